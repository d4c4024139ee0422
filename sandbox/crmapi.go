package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// routes maps the API v5 subset. Anything else gets an HTML 404 page.
func (c *CRM) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/credentials", c.api("", c.crmCredentials))
	mux.HandleFunc("GET /api/v5/integration-modules/{code}", c.api("integration_read", c.crmModuleGet))
	mux.HandleFunc("POST /api/v5/integration-modules/{code}/edit", c.api("integration_write", c.crmModuleEdit))
	mux.HandleFunc("GET /api/v5/users", c.api("user_read", c.crmUsers))
	mux.HandleFunc("GET /api/v5/users/{id}", c.api("user_read", c.crmUser))
	mux.HandleFunc("GET /api/v5/customers", c.api("customer_read", c.crmCustomers))
	mux.HandleFunc("GET /api/v5/customers/{id}", c.api("customer_read", c.crmCustomer))
	mux.HandleFunc("GET /api/v5/customers/history", c.api("customer_read", c.crmCustomerHistory))
	mux.HandleFunc("POST /api/v5/customers/create", c.api("customer_write", c.crmCustomerCreate))
	mux.HandleFunc("POST /api/v5/customers/{id}/edit", c.api("customer_write", c.crmCustomerEdit))
	mux.HandleFunc("GET /api/v5/reference/sites", c.api("reference_read", c.crmSites))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		crmHTML(w, http.StatusNotFound, "<h1>404 Not Found</h1><p>The page you are looking for does not exist.</p>")
	})
	return mux
}

// serveHTTP applies the account-wide faults, then routes.
func (c *CRM) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	f, notCRM := c.faults, c.notCRM
	c.mu.Unlock()
	if f.Down {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-c.close:
			return
		}
	}
	if notCRM {
		crmHTML(w, http.StatusOK, "<h1>Welcome to our shop</h1><p>Fresh goods every day.</p>")
		return
	}
	c.mux.ServeHTTP(w, r)
}

type crmHandler func(w http.ResponseWriter, r *http.Request, k CRMKey)

// api wraps an API method: key presence, rate limit, injected errors, key
// validity and the method's scope, in that order.
func (c *CRM) api(scope string, h crmHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-KEY")
		if key == "" {
			key = r.URL.Query().Get("apiKey")
		}
		if key == "" {
			crmFail(w, http.StatusForbidden, `"apiKey" is missing.`, nil)
			return
		}
		c.mu.Lock()
		c.requests[key]++
		if !c.allow(key) {
			c.throttled[key]++
			c.mu.Unlock()
			crmFail(w, c.opts.ThrottleStatus, "Service temporarily unavailable: too many requests.", nil)
			return
		}
		if c.faults.ErrorRatio > 0 && c.rnd.Float64() < c.faults.ErrorRatio {
			c.injected++
			status := c.faults.ErrorStatus
			c.mu.Unlock()
			if status == 0 {
				status = http.StatusInternalServerError
			}
			crmFail(w, status, http.StatusText(status), nil)
			return
		}
		k, ok := c.keys[key]
		c.mu.Unlock()
		if !ok {
			crmFail(w, http.StatusForbidden, `Wrong "apiKey" value.`, nil)
			return
		}
		if scope != "" && !k.has(scope) {
			crmFail(w, http.StatusForbidden, "Access denied.", nil)
			return
		}
		h(w, r, k)
	}
}

func (c *CRM) crmCredentials(w http.ResponseWriter, _ *http.Request, k CRMKey) {
	c.mu.Lock()
	sites := c.sitesFor(k)
	c.mu.Unlock()
	crmJSON(w, http.StatusOK, map[string]any{
		"success":        true,
		"scopes":         crmNonNil(k.Scopes),
		"siteAccess":     k.SiteAccess,
		"sitesAvailable": crmNonNil(sites),
	})
}

// sitesFor lists the store codes the key may use; the caller holds c.mu.
func (c *CRM) sitesFor(k CRMKey) []string {
	var out []string
	for _, s := range c.sites {
		if k.siteAllowed(s.Code) {
			out = append(out, s.Code)
		}
	}
	return out
}

func (c *CRM) crmSites(w http.ResponseWriter, _ *http.Request, k CRMKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sites := make(map[string]any, len(c.sites))
	for _, s := range c.sites {
		if !k.siteAllowed(s.Code) {
			continue
		}
		sites[s.Code] = map[string]any{"code": s.Code, "name": s.Name, "url": s.URL, "defaultForCrm": s.DefaultForCRM}
	}
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "sites": sites})
}

type crmModuleWire struct {
	Code            string            `json:"code"`
	IntegrationCode string            `json:"integrationCode"`
	Active          *bool             `json:"active"`
	Name            string            `json:"name"`
	ClientID        string            `json:"clientId"`
	BaseURL         string            `json:"baseUrl"`
	AccountURL      string            `json:"accountUrl"`
	Logo            string            `json:"logo"`
	Actions         map[string]string `json:"actions"`
	Integrations    *struct {
		MgBot json.RawMessage `json:"mgBot"`
	} `json:"integrations"`
}

func (c *CRM) crmModuleGet(w http.ResponseWriter, r *http.Request, _ CRMKey) {
	c.mu.Lock()
	m, ok := c.modules[r.PathValue("code")]
	c.mu.Unlock()
	if !ok {
		crmFail(w, http.StatusNotFound, "Not found", nil)
		return
	}
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "integrationModule": map[string]any{
		"code": m.Code, "integrationCode": m.Code, "active": m.Active, "name": m.Name,
		"clientId": m.ClientID, "baseUrl": m.BaseURL, "actions": m.Actions,
	}})
}

// crmModuleEdit registers or updates a module. On creation name, baseUrl
// and clientId are required (which fields retailCRM requires is
// unverified).
func (c *CRM) crmModuleEdit(w http.ResponseWriter, r *http.Request, _ CRMKey) {
	raw, ok := crmFormJSON(w, r, "integrationModule")
	if !ok {
		return
	}
	var in crmModuleWire
	if err := json.Unmarshal(raw, &in); err != nil {
		crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"integrationModule": "invalid JSON"})
		return
	}
	code := r.PathValue("code")
	if in.Code != "" && in.Code != code {
		crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"code": "does not match the code in the address"})
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, exists := c.modules[code]
	if !exists {
		problems := map[string]string{}
		for field, v := range map[string]string{"name": in.Name, "baseUrl": in.BaseURL, "clientId": in.ClientID} {
			if v == "" {
				problems[field] = "This value should not be blank."
			}
		}
		if len(problems) > 0 {
			crmFail(w, http.StatusBadRequest, "Errors in the entity format", problems)
			return
		}
		m = CRMModule{Code: code, Active: true}
	}
	if in.Name != "" {
		m.Name = in.Name
	}
	if in.BaseURL != "" {
		m.BaseURL = in.BaseURL
	}
	if in.ClientID != "" {
		m.ClientID = in.ClientID
	}
	if in.Active != nil {
		m.Active = *in.Active
	}
	if in.Actions != nil {
		m.Actions = in.Actions
	}
	m.MGBot = in.Integrations != nil && len(in.Integrations.MgBot) > 0 && string(in.Integrations.MgBot) != "null"
	m.Edits++
	c.modules[code] = m
	info := map[string]any{}
	if m.MGBot {
		info["mgBot"] = map[string]string{"endpointUrl": c.opts.MGEndpoint, "token": c.opts.MGToken}
	}
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	crmJSON(w, status, map[string]any{"success": true, "info": info})
}

func crmUserJSON(u CRMUser) map[string]any {
	out := map[string]any{
		"id": u.ID, "firstName": u.FirstName, "lastName": u.LastName, "email": u.Email,
		"active": u.Active, "online": u.Online, "isManager": u.IsManager, "isAdmin": false,
		"status": u.Status,
	}
	if u.MGUserID != 0 {
		out["mgUserId"] = u.MGUserID
	}
	return out
}

func (c *CRM) crmUsers(w http.ResponseWriter, r *http.Request, _ CRMKey) {
	q := r.URL.Query()
	limit, page, ok := crmPaging(w, q)
	if !ok {
		return
	}
	match := func(u CRMUser) bool {
		for name, v := range map[string]bool{"active": u.Active, "isManager": u.IsManager, "online": u.Online} {
			if f := q.Get("filter[" + name + "]"); f != "" && (f == "1" || f == "true") != v {
				return false
			}
		}
		if f := q.Get("filter[status]"); f != "" && f != u.Status {
			return false
		}
		if f := q.Get("filter[email]"); f != "" && !strings.EqualFold(f, u.Email) {
			return false
		}
		return true
	}
	crmList(w, "users", c.Users(), match, crmUserJSON, limit, page)
}

func (c *CRM) crmUser(w http.ResponseWriter, r *http.Request, _ CRMKey) {
	id, err := strconv.Atoi(r.PathValue("id"))
	c.mu.Lock()
	u, ok := c.users[id]
	c.mu.Unlock()
	if err != nil || !ok {
		crmFail(w, http.StatusNotFound, "Not found", nil)
		return
	}
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "user": crmUserJSON(u)})
}

// customerJSON is a customer as the API lists it. Segments are segment
// objects and tags tag objects, as the API reference describes them
// (unverified against a live account).
func (c *CRM) customerJSON(cu CRMCustomer) map[string]any {
	out := crmCustomerJSON(cu)
	if cu.ManagerID != 0 {
		out["managerId"] = cu.ManagerID
	}
	c.mu.Lock()
	segments := make([]map[string]any, 0, len(cu.Segments))
	for _, code := range cu.Segments {
		segments = append(segments, map[string]any{
			"id": c.segmentIDs[code], "code": code, "name": code, "isDynamic": false, "active": true,
		})
	}
	c.mu.Unlock()
	out["segments"] = segments
	tags := make([]map[string]any, 0, len(cu.Tags))
	for _, t := range cu.Tags {
		tags = append(tags, map[string]any{"name": t, "color": "grey", "attached": true})
	}
	out["tags"] = tags
	return out
}

// crmCustomer answers GET /customers/{id} with by=id or by=externalId (the
// default, as in retailCRM) and an optional site; a selective key sees
// only the customers of its stores.
func (c *CRM) crmCustomer(w http.ResponseWriter, r *http.Request, k CRMKey) {
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = "externalId"
	}
	ref := r.PathValue("id")
	var (
		cu    CRMCustomer
		found bool
	)
	switch by {
	case "id":
		if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
			cu, found = c.Customer(id)
		}
	case "externalId":
		for _, x := range c.Customers() {
			if x.ExternalID == ref && (q.Get("site") == "" || x.Site == q.Get("site")) {
				cu, found = x, true
				break
			}
		}
	default:
		crmFail(w, http.StatusBadRequest, "Value of 'by' must be 'id' or 'externalId'", nil)
		return
	}
	if !found || (q.Get("site") != "" && q.Get("site") != cu.Site) {
		crmFail(w, http.StatusNotFound, "Not found", nil)
		return
	}
	if !k.siteAllowed(cu.Site) {
		crmFail(w, http.StatusForbidden, "Access denied.", nil)
		return
	}
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "customer": c.customerJSON(cu)})
}

func crmCustomerJSON(cu CRMCustomer) map[string]any {
	phones := make([]map[string]string, 0, len(cu.Phones))
	for _, p := range cu.Phones {
		phones = append(phones, map[string]string{"number": p})
	}
	out := map[string]any{
		"type": "customer", "id": cu.ID, "firstName": cu.FirstName, "lastName": cu.LastName,
		"phones": phones, "site": cu.Site,
	}
	if cu.ExternalID != "" {
		out["externalId"] = cu.ExternalID
	}
	if cu.Email != "" {
		out["email"] = cu.Email
	}
	if cu.MGCustomerID != "" {
		out["mgCustomerId"] = cu.MGCustomerID
	}
	return out
}

// crmCustomers lists customers. filter[name] matches a part of the full
// name, case-insensitively, or, when it holds digits, a part of a phone's
// digits; filter[email] matches a part of the email, case-insensitively;
// filter[mgCustomerId] matches exactly. A selective key sees only the
// customers of its stores.
func (c *CRM) crmCustomers(w http.ResponseWriter, r *http.Request, k CRMKey) {
	q := r.URL.Query()
	limit, page, ok := crmPaging(w, q)
	if !ok {
		return
	}
	mgID := q.Get("filter[mgCustomerId]")
	name := strings.ToLower(strings.TrimSpace(q.Get("filter[name]")))
	email := strings.ToLower(strings.TrimSpace(q.Get("filter[email]")))
	match := func(cu CRMCustomer) bool {
		if !k.siteAllowed(cu.Site) {
			return false
		}
		if mgID != "" && cu.MGCustomerID != mgID {
			return false
		}
		if email != "" && !strings.Contains(strings.ToLower(cu.Email), email) {
			return false
		}
		if name != "" {
			full := strings.ToLower(strings.TrimSpace(cu.FirstName + " " + cu.LastName))
			found := strings.Contains(full, name)
			if d := crmDigits(name); !found && d != "" {
				for _, p := range cu.Phones {
					if strings.Contains(crmDigits(p), d) {
						found = true
						break
					}
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	crmList(w, "customers", c.Customers(), match, c.customerJSON, limit, page)
}

// crmCustomerWire is a customer as api-client-go marshals it. Phones and
// mgCustomerId are pointers to tell "absent" from "empty" on edit.
type crmCustomerWire struct {
	ID         int64   `json:"id"`
	ExternalID string  `json:"externalId"`
	FirstName  *string `json:"firstName"`
	LastName   *string `json:"lastName"`
	Email      *string `json:"email"`
	Site       string  `json:"site"`
	Phones     *[]struct {
		Number string `json:"number"`
	} `json:"phones"`
	MGCustomerID *crmFlexString `json:"mgCustomerId"`
}

func (in crmCustomerWire) applyTo(cu *CRMCustomer) {
	if in.ExternalID != "" {
		cu.ExternalID = in.ExternalID
	}
	if in.FirstName != nil {
		cu.FirstName = *in.FirstName
	}
	if in.LastName != nil {
		cu.LastName = *in.LastName
	}
	if in.Email != nil {
		cu.Email = *in.Email
	}
	if in.Phones != nil {
		cu.Phones = cu.Phones[:0:0]
		for _, p := range *in.Phones {
			if p.Number != "" {
				cu.Phones = append(cu.Phones, p.Number)
			}
		}
	}
	if in.MGCustomerID != nil {
		cu.MGCustomerID = string(*in.MGCustomerID)
	}
}

func (c *CRM) crmCustomerCreate(w http.ResponseWriter, r *http.Request, k CRMKey) {
	raw, ok := crmFormJSON(w, r, "customer")
	if !ok {
		return
	}
	var in crmCustomerWire
	if err := json.Unmarshal(raw, &in); err != nil {
		crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"customer": "invalid JSON"})
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	site, ok := c.crmResolveSite(w, r, k, in.Site)
	if !ok {
		return
	}
	if in.ExternalID != "" {
		for _, cu := range c.customers {
			if cu.ExternalID == in.ExternalID && cu.Site == site {
				crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"externalId": "Customer with the same externalId already exists."})
				return
			}
		}
	}
	var cu CRMCustomer
	in.applyTo(&cu)
	cu.Site = site
	id := c.insertCustomer(cu)
	c.created++
	crmJSON(w, http.StatusCreated, map[string]any{"success": true, "id": id})
}

func (c *CRM) crmCustomerEdit(w http.ResponseWriter, r *http.Request, k CRMKey) {
	raw, ok := crmFormJSON(w, r, "customer")
	if !ok {
		return
	}
	var in crmCustomerWire
	if err := json.Unmarshal(raw, &in); err != nil {
		crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"customer": "invalid JSON"})
		return
	}
	by := r.PostForm.Get("by")
	if by == "" {
		by = "externalId"
	}
	ref := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		cu    CRMCustomer
		found bool
	)
	switch by {
	case "id":
		id, err := strconv.ParseInt(ref, 10, 64)
		if err == nil {
			cu, found = c.customers[id]
		}
	case "externalId":
		for _, x := range c.customers {
			if x.ExternalID == ref {
				cu, found = x, true
				break
			}
		}
	default:
		crmFail(w, http.StatusBadRequest, "Value of 'by' must be 'id' or 'externalId'", nil)
		return
	}
	if !found {
		crmFail(w, http.StatusNotFound, "Not found", nil)
		return
	}
	if site := r.PostForm.Get("site"); site != "" && site != cu.Site {
		crmFail(w, http.StatusNotFound, "Not found", nil)
		return
	}
	if !k.siteAllowed(cu.Site) {
		crmFail(w, http.StatusForbidden, "Access denied.", nil)
		return
	}
	in.applyTo(&cu)
	c.customers[cu.ID] = cu
	c.editsCount++
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "id": cu.ID})
}

// crmResolveSite picks the store of a new customer: the form's site, the
// customer's, or the default one; a selective key must name an allowed
// store. The caller holds c.mu.
func (c *CRM) crmResolveSite(w http.ResponseWriter, r *http.Request, k CRMKey, inSite string) (string, bool) {
	site := r.PostForm.Get("site")
	if site == "" {
		site = inSite
	}
	if site == "" {
		if k.SiteAccess != "access_full" {
			crmFail(w, http.StatusBadRequest, "Parameter 'site' is missing", nil)
			return "", false
		}
		return c.defaultSite(), true
	}
	if !slices.ContainsFunc(c.sites, func(s CRMSite) bool { return s.Code == site }) {
		crmFail(w, http.StatusBadRequest, "Errors in the entity format", map[string]string{"site": "Site " + strconv.Quote(site) + " does not exist."})
		return "", false
	}
	if !k.siteAllowed(site) {
		crmFail(w, http.StatusForbidden, "Access denied.", nil)
		return "", false
	}
	return site, true
}

// crmFormJSON reads a form field holding a JSON document, answering like
// retailCRM when it is missing.
func crmFormJSON(w http.ResponseWriter, r *http.Request, field string) ([]byte, bool) {
	if err := r.ParseForm(); err != nil {
		crmFail(w, http.StatusBadRequest, "Errors in the input parameters", nil)
		return nil, false
	}
	v := r.PostForm.Get(field)
	if v == "" {
		crmFail(w, http.StatusBadRequest, "Parameter '"+field+"' is missing", nil)
		return nil, false
	}
	return []byte(v), true
}

// crmPaging reads limit (20, 50 or 100; default 20) and page (default 1).
func crmPaging(w http.ResponseWriter, q map[string][]string) (limit, page int, ok bool) {
	limit, page = 20, 1
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 20 && n != 50 && n != 100) {
			crmFail(w, http.StatusBadRequest, "Errors in the input parameters", map[string]string{"limit": "The value you selected is not a valid choice."})
			return 0, 0, false
		}
		limit = n
	}
	if v := get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			crmFail(w, http.StatusBadRequest, "Errors in the input parameters", map[string]string{"page": "This value should be greater than or equal to 1."})
			return 0, 0, false
		}
		page = n
	}
	return limit, page, true
}

// crmList answers a list request: the items that match, as JSON, one page
// of them under key, with the pagination block.
func crmList[T any](w http.ResponseWriter, key string, items []T, match func(T) bool, toJSON func(T) map[string]any, limit, page int) {
	var all []map[string]any
	for _, it := range items {
		if match(it) {
			all = append(all, toJSON(it))
		}
	}
	out, pagination := crmPage(all, limit, page)
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "pagination": pagination, key: out})
}

func crmPage(all []map[string]any, limit, page int) ([]map[string]any, map[string]int) {
	total := len(all)
	pages := max(1, (total+limit-1)/limit)
	from := min((page-1)*limit, total)
	to := min(from+limit, total)
	items := all[from:to]
	if items == nil {
		items = []map[string]any{}
	}
	return items, map[string]int{"limit": limit, "totalCount": total, "currentPage": page, "totalPageCount": pages}
}

func crmJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

func crmFail(w http.ResponseWriter, status int, msg string, errs map[string]string) {
	body := map[string]any{"success": false, "errorMsg": msg}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	crmJSON(w, status, body)
}

func crmHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Shop</title></head><body>"+body+"</body></html>\n") //nolint:errcheck
}

func crmNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// crmFlexString accepts a JSON string or number.
type crmFlexString string

func (s *crmFlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = crmFlexString(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = crmFlexString(n.String())
	return nil
}
