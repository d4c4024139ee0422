package distributor

// WithIndexFrom gives pools of n managers or more an index (see index), so
// that tests exercise it over pools smaller than indexMin.
func WithIndexFrom(n int) Option {
	return optionFunc(func(c *config) error {
		c.indexMin = n
		return nil
	})
}
