package emulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Indicator is one public indicator the dataset planted: the test oracle
// for what must reach Collective Insights. Values are normalised as
// DESIGN.md prescribes; Field follows the naming in the package doc.
type Indicator struct {
	Type, Value, Field string
	// Verdict is the evidence's verdict ("" for CVEs from title/description).
	Verdict string
	AlertID string
	// IncidentID and IncidentName are "" for alerts outside any incident.
	IncidentID, IncidentName string
	// ServiceSource and DetectionSource are the alert's, as Graph sends them
	// with Prefer: include-unknown-enum-members.
	ServiceSource, DetectionSource string
}

func (e *Emulator) generateInitial() error {
	if e.cfg.Alerts == 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(e.cfg.Seed), 0x706c616e))
	plans := planTimes(r, e.cfg.Alerts, e.cfg.Start, e.cfg.End)
	incidents := planIncidents(r, plans, e.cfg.TenantID)
	records, forbidden := e.gen.generateAll(plans)
	s := e.store
	s.mu.Lock()
	defer s.mu.Unlock()
	// plans are in lastUpdate order but ties may be out of id order.
	slices.SortStableFunc(records, compareByLastUpdate)
	s.byLastUpdate = records
	for _, rec := range records {
		s.alertsByID[rec.id] = rec
		if rec.incident != nil {
			rec.incident.alerts = append(rec.incident.alerts, rec)
		}
	}
	for _, inc := range incidents {
		inc.refresh()
		s.incidents = append(s.incidents, inc)
		s.incidentsByID[inc.incident.ID] = inc
	}
	s.addForbidden(forbidden)
	return nil
}

// AddAlerts adds n new alerts with lastUpdateDateTime = now (about half of
// them in a new incident of their own) and returns their ids.
func (e *Emulator) AddAlerts(n int) []string {
	e.mutate.Lock()
	defer e.mutate.Unlock()
	now := time.Now().Truncate(100 * time.Nanosecond)
	ids := make([]string, 0, n)
	for range n {
		p := alertPlan{index: e.nextIndex, lastUpdate: now, created: now.Add(-time.Duration(e.rng.IntN(600)) * time.Second)}
		e.nextIndex++
		if e.rng.IntN(2) == 0 {
			p.incident = newIncidentRecord(strconv.Itoa(900_000_000+p.index), e.cfg.TenantID)
		}
		a, b := e.gen.build(p)
		rec := newAlertRecord(p, a)
		e.store.mu.Lock()
		e.store.insert(rec)
		if p.incident != nil {
			p.incident.alerts = []*alertRecord{rec}
			p.incident.refresh()
			e.store.incidents = append(e.store.incidents, p.incident)
			e.store.incidentsByID[p.incident.incident.ID] = p.incident
		}
		e.store.addForbidden(b.forbidden)
		e.store.mu.Unlock()
		ids = append(ids, rec.id)
	}
	e.logf("dataset: added %d alerts", n)
	return ids
}

// UpdateAlerts changes n random existing alerts (fewer if the dataset is
// smaller) and returns their ids.
func (e *Emulator) UpdateAlerts(n int) []string {
	e.mutate.Lock()
	defer e.mutate.Unlock()
	e.store.mu.RLock()
	total := len(e.store.byLastUpdate)
	chosen := make([]*alertRecord, 0, min(n, total))
	for _, i := range e.rng.Perm(total)[:min(n, total)] {
		chosen = append(chosen, e.store.byLastUpdate[i])
	}
	e.store.mu.RUnlock()
	return e.update(chosen)
}

// update gives each alert lastUpdateDateTime = now, moves it along its
// lifecycle and, half of the time, adds an evidence item with a new public
// indicator. The caller holds e.mutate.
func (e *Emulator) update(alerts []*alertRecord) []string {
	ids := make([]string, 0, len(alerts))
	for _, rec := range alerts {
		// Only holders of e.mutate change records, so rec cannot change
		// between this read and the write below.
		e.store.mu.RLock()
		body, indicators := e.gen.current(rec)
		previous := rec.lastUpdate
		e.store.mu.RUnlock()
		var a graphAlert
		if err := json.Unmarshal(body, &a); err != nil {
			panic(fmt.Sprintf("emulator: decoding its own alert: %v", err))
		}
		now := time.Now().Truncate(100 * time.Nanosecond)
		if !now.After(previous) { // keep lastUpdateDateTime strictly increasing
			now = previous.Add(time.Microsecond)
		}
		a.LastUpdateDateTime = graphTime(now)
		if a.Status == "new" {
			a.Status = "inProgress"
		}
		b := newEvidenceBuilder(e.rng, e.gen.pools, a.LastUpdateDateTime)
		for _, ind := range indicators { // keep indicators unique per alert
			b.planted[ind.Type+"\x00"+ind.Value] = true
		}
		if e.rng.IntN(2) == 0 {
			a.Evidence = append(a.Evidence, b.build(pick(e.rng, []evidenceKind{evURL, evDNS, evFile, evFileHash})))
		}

		e.store.mu.Lock()
		e.store.remove(rec)
		rec.lastUpdate = now
		rec.setFields(&a)
		rec.changed = &alertVersion{body: mustMarshal(&a), indicators: slices.Concat(indicators, b.indicators)}
		e.store.insert(rec)
		if rec.incident != nil {
			rec.incident.refresh()
		}
		e.store.addForbidden(b.forbidden)
		e.store.mu.Unlock()
		ids = append(ids, rec.id)
	}
	if len(ids) > 0 {
		e.logf("dataset: updated %d alerts", len(ids))
	}
	return ids
}

// Expected returns every public indicator the dataset planted, one per
// alert and (type, value), in lastUpdateDateTime order of their alerts.
// Alerts are regenerated to list them, on every core.
func (e *Emulator) Expected() []Indicator {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	records := e.store.byLastUpdate
	perAlert := make([][]Indicator, len(records))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(records); i += workers {
				perAlert[i] = e.expectedOf(records[i])
			}
		})
	}
	wg.Wait()
	return slices.Concat(perAlert...)
}

// expectedOf lists one alert's indicators; the caller holds e.store.mu.
func (e *Emulator) expectedOf(rec *alertRecord) []Indicator {
	var planted []plantedIndicator
	if rec.changed != nil {
		planted = rec.changed.indicators
	} else {
		_, b := e.gen.build(rec.plan)
		planted = b.indicators
	}
	incidentID, incidentName := "", ""
	if rec.incident != nil {
		incidentID, incidentName = rec.incident.incident.ID, rec.incident.incident.DisplayName
	}
	out := make([]Indicator, len(planted))
	for i, ind := range planted {
		out[i] = Indicator{Type: ind.Type, Value: ind.Value, Field: ind.Field, Verdict: ind.Verdict,
			AlertID: rec.id, IncidentID: incidentID, IncidentName: incidentName, ServiceSource: rec.serviceSource, DetectionSource: rec.detectionSource}
	}
	return out
}

// IncidentCount is the number of incidents in the dataset.
func (e *Emulator) IncidentCount() int {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	return len(e.store.incidents)
}

// Forbidden returns, sorted, every value the dataset planted that must never
// be submitted: non-public IPs, the customer's device addresses and names,
// user and mailbox identities, connection source addresses, parent-process
// hashes and URLs still carrying credentials.
func (e *Emulator) Forbidden() []string {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	out := make([]string, 0, len(e.store.forbidden))
	for v := range e.store.forbidden {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// LastUpdate returns an alert's lastUpdateDateTime, for faults aimed at the
// window that holds it.
func (e *Emulator) LastUpdate(alertID string) (time.Time, bool) {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	rec, ok := e.store.alertsByID[alertID]
	if !ok {
		return time.Time{}, false
	}
	return rec.lastUpdate, true
}
