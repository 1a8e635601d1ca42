package emulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// windowQuery is an alerts_v2 request for [from, to) in lastUpdateDateTime order.
func windowQuery(from, to time.Time, top int) string {
	return filterPath(alertsPath, map[string]string{
		"$filter":  "lastUpdateDateTime ge " + from.UTC().Format(time.RFC3339Nano) + " and lastUpdateDateTime lt " + to.UTC().Format(time.RFC3339Nano),
		"$orderby": "lastUpdateDateTime asc",
		"$top":     strconv.Itoa(top),
	})
}

// storedAlerts returns the store's alerts in lastUpdateDateTime order.
func storedAlerts(e *Emulator) []*alertRecord {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	return slices.Clone(e.store.byLastUpdate)
}

func pageIDs(t *testing.T, body []byte) (ids []string, nextLink string) {
	t.Helper()
	var page graphPage
	mustDecode(t, body, &page)
	for _, v := range page.Value {
		var item struct{ ID string }
		mustDecode(t, v, &item)
		ids = append(ids, item.ID)
	}
	return ids, page.NextLink
}

func TestGraphIgnoreFilterServesTheWholeTenant(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 60, Seed: 3})
	c := newTestClient(t, e)
	all := storedAlerts(e)
	// A window holding the middle third of the alerts.
	from, to := all[20].lastUpdate, all[40].lastUpdate
	e.SetFaults(Faults{GraphIgnoreFilter: 1})
	_, body := c.get(windowQuery(from, to, 1000))
	ids, _ := pageIDs(t, body)
	if len(ids) != 60 {
		t.Fatalf("with the fault: %d alerts, want all 60", len(ids))
	}
	outside := 0
	for _, a := range all {
		if a.lastUpdate.Before(from) || !a.lastUpdate.Before(to) {
			outside++
		}
	}
	if outside == 0 {
		t.Fatal("the window holds every alert: the test proves nothing")
	}
	_, body = c.get(windowQuery(from, to, 1000))
	if ids, _ := pageIDs(t, body); len(ids) != 60-outside {
		t.Errorf("after the fault: %d alerts, want the window's %d", len(ids), 60-outside)
	}
	if n := e.Stats().FaultsInjected["GraphIgnoreFilter"]; n != 1 {
		t.Errorf("FaultsInjected[GraphIgnoreFilter] = %d, want 1", n)
	}
}

func TestGraphIgnoreTopServesLongerPages(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	e.SetFaults(Faults{GraphIgnoreTop: 1})
	_, body := c.get(alertsPath + "?$top=10")
	if ids, next := pageIDs(t, body); len(ids) != 30 || next != "" {
		t.Fatalf("with the fault: %d alerts (nextLink %q), want all 30 in one page", len(ids), next)
	}
	_, body = c.get(alertsPath + "?$top=10")
	if ids, next := pageIDs(t, body); len(ids) != 10 || next == "" {
		t.Errorf("after the fault: %d alerts (nextLink %q), want 10 and a nextLink", len(ids), next)
	}
}

// With GraphIgnoreOrderBy every page of a query asking for
// lastUpdateDateTime asc comes in Graph's default order instead, across
// nextLinks, until the fault is cleared.
func TestGraphIgnoreOrderByServesDefaultOrder(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 40, Seed: 3})
	c := newTestClient(t, e)
	ids := func(field string, desc bool) []string {
		alerts := storedAlerts(e)
		slices.SortFunc(alerts, byField(field, desc))
		var out []string
		for _, a := range alerts {
			out = append(out, a.id)
		}
		return out
	}
	if slices.Equal(ids("createdDateTime", true), ids("lastUpdateDateTime", false)) {
		t.Fatal("both orders are the same: the test proves nothing")
	}
	ordered := alertsPath + "?$orderby=lastUpdateDateTime%20asc&$top=15"
	e.SetFaults(Faults{GraphIgnoreOrderBy: true})
	if got, want := func() []string { ids, _ := c.listAll(ordered); return ids }(), ids("createdDateTime", true); !slices.Equal(got, want) {
		t.Fatalf("with the fault: %v, want createdDateTime desc %v", got, want)
	}
	e.SetFaults(Faults{})
	if got, _ := c.listAll(ordered); !slices.Equal(got, ids("lastUpdateDateTime", false)) {
		t.Errorf("after the fault: %v, want lastUpdateDateTime asc", got)
	}
}

func TestGraphRepeatNextLinkPointsAtItself(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	e.SetFaults(Faults{GraphRepeatNextLink: 2})
	first := e.GraphURL() + alertsPath + "?$top=10"
	_, body := c.get(first)
	ids, next := pageIDs(t, body)
	if next != first {
		t.Fatalf("nextLink = %q, want the request itself %q", next, first)
	}
	_, body = c.get(next)
	again, next := pageIDs(t, body)
	if !slices.Equal(ids, again) || next != first {
		t.Fatalf("following it served %v (nextLink %q), want the same page %v and link", again, next, ids)
	}
	// The fault is used up: paging now reaches every alert once.
	got, pages := c.listAll(alertsPath + "?$top=10")
	if len(got) != 30 || pages != 3 {
		t.Errorf("after the fault: %d alerts in %d pages, want 30 in 3", len(got), pages)
	}
	if n := e.Stats().FaultsInjected["GraphRepeatNextLink"]; n != 2 {
		t.Errorf("FaultsInjected[GraphRepeatNextLink] = %d, want 2", n)
	}
}

func TestGraphOversizePagesAboveMinAlerts(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	const size = 3 << 20
	e.SetFaults(Faults{GraphOversize: Oversize{N: 2, MinAlerts: 5, Bytes: size}})
	for i, tt := range []struct {
		top     int
		padded  bool
		comment string
	}{
		{10, true, "a page of 10 is padded"},
		{4, false, "a page under MinAlerts is not, and does not use the count"},
		{10, true, "the second padded page"},
		{10, false, "the count is used up"},
	} {
		resp, body := c.get(alertsPath + "?$top=" + strconv.Itoa(tt.top))
		ids, _ := pageIDs(t, body) // still valid JSON
		if len(ids) != tt.top {
			t.Errorf("request %d: %d alerts, want %d", i, len(ids), tt.top)
		}
		if got := len(body) == size && resp.ContentLength == size; got != tt.padded {
			t.Errorf("request %d (%s): body %d bytes, Content-Length %d", i, tt.comment, len(body), resp.ContentLength)
		}
	}
	if n := e.Stats().FaultsInjected["GraphOversize"]; n != 2 {
		t.Errorf("FaultsInjected[GraphOversize] = %d, want 2", n)
	}
	// Chunked: the same size, but the client learns it only by reading.
	e.SetFaults(Faults{GraphOversize: Oversize{N: 1, Bytes: size, Chunked: true}})
	resp, body := c.get(alertsPath + "?$top=10")
	if ids, _ := pageIDs(t, body); len(body) != size || resp.ContentLength != -1 || len(ids) != 10 {
		t.Errorf("chunked: body %d bytes, Content-Length %d, %d alerts", len(body), resp.ContentLength, len(ids))
	}
}

func TestGraphPoisonAlertCannotBeDecodedEvenAlone(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30, Seed: 9})
	c := newTestClient(t, e)
	all := storedAlerts(e)
	poison := all[12]
	e.SetFaults(Faults{GraphPoisonAlert: poison.id})

	_, body := c.get(alertsPath + "?$top=1000")
	if json.Valid(body) {
		t.Fatal("a page holding the poison alert is valid JSON")
	}
	// Alone, over its own time slice, it is still undecodable, but its id and
	// lastUpdateDateTime can be read.
	_, alone := c.get(windowQuery(poison.lastUpdate, poison.lastUpdate.Add(time.Nanosecond), 1))
	lastUpdate := `"lastUpdateDateTime":"` + poison.lastUpdate.UTC().Format(time.RFC3339Nano)
	if json.Valid(alone) || !strings.Contains(string(alone), `"id":"`+poison.id+`"`) || !strings.Contains(string(alone), lastUpdate[:len(lastUpdate)-6]) {
		t.Errorf("the poison alert alone: %.300s", alone)
	}
	if resp, single := c.get(alertsPath + "/" + poison.id); resp.StatusCode != http.StatusOK || json.Valid(single) {
		t.Errorf("GET of the poison alert: %d, valid JSON %v", resp.StatusCode, json.Valid(single))
	}
	// The pages around it decode, and together with it hold every alert.
	_, before := c.get(windowQuery(all[0].lastUpdate, poison.lastUpdate, 1000))
	_, after := c.get(windowQuery(poison.lastUpdate.Add(time.Nanosecond), all[29].lastUpdate.Add(time.Nanosecond), 1000))
	a, _ := pageIDs(t, before)
	b, _ := pageIDs(t, after)
	if len(a)+len(b) != 29 || slices.Contains(a, poison.id) || slices.Contains(b, poison.id) {
		t.Errorf("around the poison alert: %d + %d alerts, want 29 others", len(a), len(b))
	}
	// The stored alert is untouched: without the fault it is whole again.
	e.SetFaults(Faults{})
	if _, single := c.get(alertsPath + "/" + poison.id); !json.Valid(single) {
		t.Error("the alert stays poisoned after the fault is removed")
	}
}

func TestGraphFailWindowKeepsFailingUntilItEnds(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30, Seed: 4})
	c := newTestClient(t, e)
	all := storedAlerts(e)
	at, ok := e.LastUpdate(all[15].id)
	if !ok || !at.Equal(all[15].lastUpdate) {
		t.Fatalf("LastUpdate(%s) = %v, %v", all[15].id, at, ok)
	}
	e.SetFaults(Faults{GraphFailWindow: FailWindow{At: at, Status: http.StatusServiceUnavailable}})
	holding := windowQuery(all[10].lastUpdate, all[20].lastUpdate, 1000)
	for i := range 3 {
		if resp, _ := c.get(holding); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d at the failing window: %d, want 503", i, resp.StatusCode)
		}
	}
	if resp, _ := c.get(alertsPath); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("an unbounded window holds the failing instant: %d, want 503", resp.StatusCode)
	}
	for name, path := range map[string]string{
		"before": windowQuery(all[0].lastUpdate, at, 1000),
		"after":  windowQuery(at.Add(time.Nanosecond), all[29].lastUpdate, 1000),
	} {
		if resp, body := c.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("window %s the failing instant: %d %s", name, resp.StatusCode, body)
		}
	}
	if n := e.Stats().FaultsInjected["GraphFailWindow"]; n != 4 {
		t.Errorf("FaultsInjected[GraphFailWindow] = %d, want 4", n)
	}
	e.SetFaults(Faults{GraphFailWindow: FailWindow{At: at, Until: time.Now().Add(-time.Second)}})
	if resp, _ := c.get(holding); resp.StatusCode != http.StatusOK {
		t.Errorf("after Until: %d, want 200", resp.StatusCode)
	}
}
