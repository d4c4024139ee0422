package mg

import (
	"encoding/json"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

func TestTimeDecodesMGFormats(t *testing.T) {
	utc := time.Date(2018, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{`"2018-01-02T03:04:05.123456Z"`, utc},
		{`"2018-01-02T03:04:05Z"`, utc.Truncate(time.Second)},
		{`"2018-01-02T06:04:05+03:00"`, utc.Truncate(time.Second)},
		{`"2018-01-02T06:04:05.123456+03:00"`, utc},
		{`"2018-01-02T03:04:05.123456"`, utc},
		{`"2018-01-02 03:04:05"`, utc.Truncate(time.Second)},
		{`1514862245`, utc.Truncate(time.Second)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
		{`"yesterday"`, time.Time{}},
		{`{"a":1}`, time.Time{}},
		{`-5`, time.Time{}},
	}
	for _, tt := range tests {
		var v struct {
			At Time `json:"at"`
		}
		if err := json.Unmarshal([]byte(`{"at":`+tt.in+`}`), &v); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !v.At.Equal(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.in, v.At.Time, tt.want)
		}
	}
}

func TestTimeMarshalsMicroseconds(t *testing.T) {
	b, err := json.Marshal(Time{time.Date(2020, 7, 14, 14, 11, 44, 0, time.UTC)})
	if err != nil || string(b) != `"2020-07-14T14:11:44.000000Z"` {
		t.Fatalf("got %s, %v", b, err)
	}
	b, _ = json.Marshal(Time{})
	if string(b) != "null" {
		t.Fatalf("zero time: got %s", b)
	}
}

func TestResponsibleDecodesShortAndFullForms(t *testing.T) {
	var d Dialog
	short := `{"id":7,"chat":{"id":3},"responsible":{"id":111,"type":"bot","assigned_at":"2020-07-14T14:11:44.000000Z"}}`
	if err := json.Unmarshal([]byte(short), &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Responsible.Who(); got != bd.BotOf(111) || d.ChatID != 3 || d.Responsible.AssignedAt.IsZero() {
		t.Fatalf("short form: %+v, who %v", d, got)
	}
	var c Chat
	full := `{"id":3,"last_dialog":{"id":7,"responsible":{"id":12,"type":"user","name":"Ann Lee","first_name":"Ann","external_id":"5"}}}`
	if err := json.Unmarshal([]byte(full), &c); err != nil {
		t.Fatal(err)
	}
	if got := c.LastDialog.Responsible.Who(); got != bd.ManagerOf(12) || c.LastDialog.Responsible.FirstName != "Ann" {
		t.Fatalf("full form: %+v", c.LastDialog.Responsible)
	}
	for _, in := range []string{`null`, `{"id":0,"type":"user"}`, `{"id":4,"type":"customer"}`} {
		var r *Responsible
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatal(err)
		}
		if !r.Who().IsZero() {
			t.Errorf("%s: Who() = %v, want nobody", in, r.Who())
		}
	}
}

func TestMessageFillsChatIDFromChat(t *testing.T) {
	var m Message
	if err := json.Unmarshal([]byte(`{"id":1,"chat":{"id":42},"dialog":{"id":9}}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.ChatID != 42 || m.DialogID() != 9 {
		t.Fatalf("got chat %d dialog %d", m.ChatID, m.DialogID())
	}
	var none Message
	if none.DialogID() != 0 {
		t.Fatal("DialogID of a message without dialog must be 0")
	}
}

func TestUserRefCustomer(t *testing.T) {
	c := UserRef{ID: 5, Type: TypeCustomer, Name: "Bob", Phone: "+7900", Email: "b@x"}.Customer()
	if c != (bd.Customer{ID: 5, FirstName: "Bob", Phone: "+7900", Email: "b@x"}) {
		t.Fatalf("got %+v", c)
	}
	c = UserRef{ID: 5, FirstName: "Ann", LastName: "Lee", Name: "ignored"}.Customer()
	if c.Name() != "Ann Lee" {
		t.Fatalf("got %q", c.Name())
	}
}
