package emulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// generator makes alerts. Each alert is a pure function of the seed, its
// index and its planned times, so the initial dataset is generated in
// parallel and is still deterministic.
type generator struct {
	seed     uint64
	tenantID string
	pools    *pools
}

func newGenerator(seed int64, tenantID string) *generator {
	seedBits := uint64(seed)
	return &generator{seed: seedBits, tenantID: tenantID, pools: newPools(rand.New(rand.NewPCG(seedBits, 0x706f6f6c73)))}
}

func (g *generator) rngFor(index int) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed, 0x616c657274<<24|uint64(index)))
}

// alertPlan is what is decided about an alert before it is generated.
type alertPlan struct {
	index               int
	created, lastUpdate time.Time
	incident            *incidentRecord
}

// graphTime formats t as Graph does: UTC with up to 7 fractional digits,
// trailing zeros dropped (so whole seconds have none).
func graphTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.9999999Z")
}

// planTimes spreads n lastUpdateDateTimes over [start, end), ascending, with
// some ties and mixed precision as production has, and a createdDateTime up
// to 6 hours before each (never before start).
func planTimes(r *rand.Rand, n int, start, end time.Time) []alertPlan {
	span := end.Sub(start)
	plans := make([]alertPlan, n)
	for i := range plans {
		plans[i].lastUpdate = start.Add(time.Duration(r.Int64N(int64(span))))
	}
	slices.SortFunc(plans, func(a, b alertPlan) int { return a.lastUpdate.Compare(b.lastUpdate) })
	for i := range plans {
		p := &plans[i]
		p.index = i
		switch k := r.IntN(50); {
		case k == 0 && i > 0:
			p.lastUpdate = plans[i-1].lastUpdate // same-instant updates happen in bulk
		case k < 5:
			p.lastUpdate = p.lastUpdate.Truncate(time.Second)
		case k < 15:
			p.lastUpdate = p.lastUpdate.Truncate(time.Millisecond)
		default:
			p.lastUpdate = p.lastUpdate.Truncate(100 * time.Nanosecond)
		}
		if p.lastUpdate.Before(start) {
			p.lastUpdate = start
		}
		back := min(6*time.Hour, p.lastUpdate.Sub(start))
		p.created = p.lastUpdate
		if back > 0 {
			p.created = p.lastUpdate.Add(-time.Duration(r.Int64N(int64(back)))).Truncate(100 * time.Nanosecond)
		}
	}
	return plans
}

// planIncidents groups neighbouring alerts into incidents of one to four
// alerts; about a third of the alerts belong to none.
func planIncidents(r *rand.Rand, plans []alertPlan, tenantID string) []*incidentRecord {
	var incidents []*incidentRecord
	nextID := 1000 + r.IntN(1_000_000)
	var current *incidentRecord
	remaining := 0
	for i := range plans {
		if remaining > 0 {
			plans[i].incident, remaining = current, remaining-1
			continue
		}
		if r.IntN(100) < 35 {
			continue
		}
		current = newIncidentRecord(strconv.Itoa(nextID), tenantID)
		nextID++
		incidents = append(incidents, current)
		plans[i].incident, remaining = current, r.IntN(4)
	}
	return incidents
}

// generateAll builds the records of plans on every core. It returns them in
// plan order with the forbidden values they planted.
func (g *generator) generateAll(plans []alertPlan) ([]*alertRecord, []string) {
	records := make([]*alertRecord, len(plans))
	workers := runtime.GOMAXPROCS(0)
	forbidden := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			seen := map[string]bool{}
			for i := w; i < len(plans); i += workers {
				a, b := g.build(plans[i])
				records[i] = newAlertRecord(plans[i], a)
				for _, v := range b.forbidden {
					if !seen[v] {
						seen[v] = true
						forbidden[w] = append(forbidden[w], v)
					}
				}
			}
		})
	}
	wg.Wait()
	return records, slices.Concat(forbidden...)
}

var (
	severities      = []string{"informational", "low", "low", "medium", "medium", "medium", "high", "high"}
	statuses        = []string{"new", "new", "new", "inProgress", "resolved"}
	classifications = []string{"truePositive", "truePositive", "falsePositive", "informationalExpectedActivity"}
	determinations  = []string{"malware", "phishing", "compromisedAccount", "maliciousUserActivity", "securityTesting", "multiStagedAttack"}
	analysts        = []string{"Automation", "secops-tier1", "Автоматизация"}
)

func pickScenario(r *rand.Rand) *scenario {
	total := 0
	for i := range scenarios {
		total += scenarios[i].weight
	}
	n := r.IntN(total)
	for i := range scenarios {
		if n -= scenarios[i].weight; n < 0 {
			return &scenarios[i]
		}
	}
	return &scenarios[len(scenarios)-1]
}

var alertIDPrefixes = map[string]string{
	svcEndpoint: "da", svcIdentity: "aa", svcCloudApps: "ca", svcOffice365: "fa", svcXDR: "ra", svcAADIP: "ad",
	svcAppGovernance: "ma", svcDLP: "dl", svcCloud: "dc", svcSentinel: "sn", svcInsiderRisk: "ir",
}

// build generates the alert of a plan, recording in the returned builder
// the indicators and forbidden values it planted. It is a pure function of
// the seed and the plan: the store regenerates alerts from their plans
// instead of keeping 3 kB of JSON per alert.
func (g *generator) build(p alertPlan) (*graphAlert, *evidenceBuilder) {
	r := g.rngFor(p.index)
	sc := pickScenario(r)
	createdAt := graphTime(p.created)
	b := newEvidenceBuilder(r, g.pools, createdAt)

	a := &graphAlert{
		ID:              fmt.Sprintf("%s%018d_%d", alertIDPrefixes[sc.service], p.created.UnixNano()/100, 1_000_000_000+p.index),
		ServiceSource:   sc.service,
		DetectionSource: pick(r, sc.detectionSources),
		ProductName:     sc.productName,
		DetectorID:      detectorID(sc),
		TenantID:        g.tenantID,
		Category:        sc.category,
		Severity:        pick(r, severities),
		Status:          pick(r, statuses),
		MitreTechniques: sc.mitre,
		CreatedDateTime: createdAt, LastUpdateDateTime: graphTime(p.lastUpdate),
		FirstActivityDateTime: graphTime(p.created.Add(-time.Duration(r.IntN(3600)) * time.Second)),
		LastActivityDateTime:  createdAt,
		Comments:              []alertComment{},
		SystemTags:            []string{},
		AdditionalData:        map[string]any{},
		RecommendedActions:    "A. Validate the alert.\nB. Scope the incident.\nC. Contain and mitigate the threat.",
	}
	a.ProviderAlertID = randomGUID(r)
	if sc.service == svcEndpoint {
		a.ProviderAlertID = a.ID[2:]
	}
	a.AlertWebURL = "https://security.microsoft.com/alerts/" + a.ID + "?tid=" + g.tenantID
	if p.incident != nil {
		a.IncidentID = ptr(p.incident.incident.ID)
		a.IncidentWebURL = ptr(p.incident.incident.IncidentWebURL)
	}
	g.fillTexts(r, sc, a, b)
	g.fillLifecycle(r, a)
	if sc.service == svcSentinel {
		a.AdditionalData = map[string]any{"AlertGenerationType": "Scheduled", "ProviderName": "ASI Scheduled Alerts"}
		a.AlertPolicyID = ptr(randomGUID(r))
	}

	for _, kind := range sc.evidence {
		a.Evidence = append(a.Evidence, b.build(kind))
	}
	for _, kind := range sc.optional {
		if r.IntN(2) == 0 {
			a.Evidence = append(a.Evidence, b.build(kind))
		}
	}
	return a, b
}

// fillTexts sets title, description and threat names, planting any CVE id
// they carry.
func (g *generator) fillTexts(r *rand.Rand, sc *scenario, a *graphAlert, b *evidenceBuilder) {
	threat := pick(r, threatFamilies)
	title := strings.ReplaceAll(pick(r, sc.titles), "{threat}", threat)
	title = strings.ReplaceAll(title, "{file}", pick(r, documentNames))
	description := sc.description
	if strings.Contains(title, "{cve}") {
		cve := pick(r, titleCVEs)
		title = strings.ReplaceAll(title, "{cve}", cve)
		b.plant(contract.TypeVulnerability, cve, "title", "")
	}
	if strings.Contains(description, "{cve}") {
		cve := pick(r, descriptionCVEs)
		description = strings.ReplaceAll(description, "{cve}", cve)
		b.plant(contract.TypeVulnerability, cve, "description", "")
	}
	a.Title, a.Description = title, description
	if sc.namesThreat {
		a.ThreatFamilyName = ptr(threat)
		a.ThreatDisplayName = ptr("Trojan:Win32/" + threat + ".RPX!MTB")
	}
	if sc.actor != "" {
		a.ActorDisplayName = ptr(sc.actor)
	}
}

// fillLifecycle sets status-dependent fields the way production does:
// unresolved alerts carry resolvedDateTime null or "".
func (g *generator) fillLifecycle(r *rand.Rand, a *graphAlert) {
	if a.Status == "resolved" {
		a.ResolvedDateTime = ptr(a.LastUpdateDateTime)
		a.Classification, a.Determination = ptr(pick(r, classifications)), ptr(pick(r, determinations))
		a.AssignedTo = ptr(pick(r, analysts))
		a.Comments = []alertComment{{Comment: "Closed after review", CreatedByDisplayName: *a.AssignedTo, CreatedDateTime: a.LastUpdateDateTime}}
		return
	}
	if r.IntN(3) == 0 {
		a.ResolvedDateTime = ptr("")
	}
	if a.Status == "inProgress" {
		a.AssignedTo = ptr(pick(r, analysts))
	}
}

// detectorID is stable per scenario, as a real detector's id is.
func detectorID(sc *scenario) string {
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.titles[0] == sc.titles[0] })
	return fmt.Sprintf("7b3c%04x-2f1d-4c6e-9a1b-%012x", i, 0xd373c700+i)
}

// newAlertRecord makes the store's record of a freshly generated alert.
func newAlertRecord(p alertPlan, a *graphAlert) *alertRecord {
	rec := &alertRecord{plan: p, created: p.created, lastUpdate: p.lastUpdate, incident: p.incident}
	rec.setFields(a)
	return rec
}

// setFields copies the fields queries need from a.
func (rec *alertRecord) setFields(a *graphAlert) {
	rec.id = a.ID
	rec.serviceSource, rec.detectionSource = a.ServiceSource, a.DetectionSource
	rec.severity, rec.status, rec.category, rec.title = a.Severity, a.Status, a.Category, a.Title
	rec.hasEvolvableEnum = evolvableEnumMembers[a.ServiceSource] || evolvableEnumMembers[a.DetectionSource]
}

// current returns the alert's JSON and planted indicators: the stored ones
// once it changed, else its regeneration. The caller holds the store lock.
func (g *generator) current(rec *alertRecord) ([]byte, []plantedIndicator) {
	if rec.changed != nil {
		return rec.changed.body, rec.changed.indicators
	}
	a, b := g.build(rec.plan)
	return mustMarshal(a), b.indicators
}

// mustMarshal encodes the emulator's own Graph types, which hold only
// strings, numbers, slices and maps: encoding cannot fail.
func mustMarshal(v any) []byte {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("emulator: encoding %T: %v", v, err))
	}
	return body
}
