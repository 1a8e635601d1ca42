package emulator

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// alertRecord is one alert as the store keeps it: the fields $filter and
// $orderby need, and how to produce its JSON. Fields change only under the
// store's write lock.
type alertRecord struct {
	// plan regenerates the alert as first generated (see generator.build).
	plan alertPlan
	// changed is set once an update made the alert differ from its plan.
	changed         *alertVersion
	id              string
	created         time.Time
	lastUpdate      time.Time
	serviceSource   string
	detectionSource string
	severity        string
	status          string
	category        string
	title           string
	incident        *incidentRecord // nil for alerts outside any incident
	// hasEvolvableEnum marks alerts with enum members Graph hides without
	// Prefer: include-unknown-enum-members.
	hasEvolvableEnum bool
}

// alertVersion is an alert's JSON and planted indicators after an update.
type alertVersion struct {
	body       []byte
	indicators []plantedIndicator
}

func (a *alertRecord) timeField(name string) time.Time {
	if name == "createdDateTime" {
		return a.created
	}
	return a.lastUpdate
}

func (a *alertRecord) stringField(name string) string {
	switch name {
	case "serviceSource":
		return a.serviceSource
	case "detectionSource":
		return a.detectionSource
	case "severity":
		return a.severity
	case "status":
		return a.status
	default:
		return a.category
	}
}

// incidentRecord is encoded per request: incidents are few and an
// incident's lastUpdateDateTime follows its alerts.
type incidentRecord struct {
	incident   graphIncident
	created    time.Time
	lastUpdate time.Time
	alerts     []*alertRecord
}

func (i *incidentRecord) timeField(name string) time.Time {
	if name == "createdDateTime" {
		return i.created
	}
	return i.lastUpdate
}

func (i *incidentRecord) stringField(name string) string {
	switch name {
	case "status":
		return i.incident.Status
	case "severity":
		return i.incident.Severity
	case "classification":
		return i.incident.Classification
	case "determination":
		return i.incident.Determination
	default: // assignedTo
		if i.incident.AssignedTo == nil {
			return ""
		}
		return *i.incident.AssignedTo
	}
}

// store holds the dataset. Alerts are kept sorted by (lastUpdateDateTime,
// id) so a lastUpdateDateTime window is found by binary search.
type store struct {
	mu            sync.RWMutex
	byLastUpdate  []*alertRecord
	alertsByID    map[string]*alertRecord
	incidents     []*incidentRecord
	incidentsByID map[string]*incidentRecord
	// forbidden is every value the dataset planted that must never be
	// submitted.
	forbidden map[string]struct{}
}

func newStore() *store {
	return &store{alertsByID: map[string]*alertRecord{}, incidentsByID: map[string]*incidentRecord{}, forbidden: map[string]struct{}{}}
}

func compareByLastUpdate(a, b *alertRecord) int {
	if c := a.lastUpdate.Compare(b.lastUpdate); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// insert adds a record at its sorted position; the caller holds mu.
func (s *store) insert(a *alertRecord) {
	i, _ := slices.BinarySearchFunc(s.byLastUpdate, a, compareByLastUpdate)
	s.byLastUpdate = slices.Insert(s.byLastUpdate, i, a)
	s.alertsByID[a.id] = a
}

// remove takes a record out of the sorted slice before its
// lastUpdateDateTime changes; the caller holds mu.
func (s *store) remove(a *alertRecord) {
	if i, found := slices.BinarySearchFunc(s.byLastUpdate, a, compareByLastUpdate); found {
		s.byLastUpdate = slices.Delete(s.byLastUpdate, i, i+1)
	}
}

// lastUpdateRange returns the alerts with from <= lastUpdate < to (a zero
// bound is open), in ascending order; the caller holds mu.
func (s *store) lastUpdateRange(from, to time.Time) []*alertRecord {
	byTime := func(a *alertRecord, t time.Time) int { return a.lastUpdate.Compare(t) }
	lo, hi := 0, len(s.byLastUpdate)
	if !from.IsZero() {
		lo, _ = slices.BinarySearchFunc(s.byLastUpdate, from, byTime)
	}
	if !to.IsZero() {
		hi, _ = slices.BinarySearchFunc(s.byLastUpdate, to, byTime)
	}
	if hi < lo {
		return nil
	}
	return s.byLastUpdate[lo:hi]
}

func (s *store) addForbidden(values []string) {
	for _, v := range values {
		s.forbidden[v] = struct{}{}
	}
}
