package m365defenderreceiver

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// benchPage builds a Graph page of n realistic alerts, about 3 evidence items each.
func benchPage(n int) []byte {
	alerts := make([]map[string]any, 0, n)
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range n {
		lu := base.Add(time.Duration(i) * time.Second)
		alerts = append(alerts, map[string]any{
			"@odata.type":        "#microsoft.graph.security.alert",
			"id":                 fmt.Sprintf("da6375789952870%05d_756343937", i),
			"providerAlertId":    fmt.Sprintf("da6375789952870%05d_756343937", i),
			"incidentId":         fmt.Sprintf("%d", 28000+i/5),
			"status":             "new",
			"severity":           []string{"informational", "low", "medium", "high"}[i%4],
			"classification":     "unknown",
			"determination":      "unknown",
			"serviceSource":      "microsoftDefenderForEndpoint",
			"detectionSource":    "antivirus",
			"productName":        "Microsoft Defender for Endpoint",
			"detectorId":         "e0da400f-affd-43ef-b1d5-afc2eb6f2756",
			"tenantId":           "b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c",
			"title":              "Suspicious execution of hidden file",
			"description":        "A hidden file has been launched. This activity could indicate a compromised host. Attackers often hide files associated with malicious tools to evade file system inspection and defenses.",
			"recommendedActions": "Collect artifacts and determine scope",
			"category":           "DefenseEvasion",
			"assignedTo":         nil,
			"alertWebUrl":        "https://security.microsoft.com/alerts/da637578995287051192_756343937?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c",
			"incidentWebUrl":     "https://security.microsoft.com/incidents/28282?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c",
			"threatDisplayName":  "Trojan:Win32/Qakbot!MTB",
			"threatFamilyName":   "Qakbot",
			"mitreTechniques":    []string{"T1564.001", "T1059"},
			"createdDateTime":    lu.Add(-time.Hour).Format(time.RFC3339Nano),
			"lastUpdateDateTime": lu.Format("2006-01-02T15:04:05.0000000Z"),
			"resolvedDateTime":   nil,
			"comments":           []any{},
			"systemTags":         []string{},
			"evidence": []any{
				map[string]any{
					"@odata.type": "#microsoft.graph.security.fileEvidence", "createdDateTime": lu.Format(time.RFC3339Nano), "verdict": "malicious",
					"remediationStatus": "prevented", "roles": []any{}, "tags": []any{}, "detectionStatus": "detected",
					"mdeDeviceId": "73e7e2de709dff64ef64b1d0c30e67fab63279db",
					"fileDetails": map[string]any{
						"sha1": fmt.Sprintf("%040x", i+1), "sha256": fmt.Sprintf("%064x", i+1), "fileName": "MsSense.exe",
						"filePath": "C:\\Program Files\\temp", "filePublisher": "Microsoft Corporation", "fileSize": 6136392, "issuer": nil, "signer": nil,
					},
				},
				map[string]any{
					"@odata.type": "#microsoft.graph.security.ipEvidence", "createdDateTime": lu.Format(time.RFC3339Nano), "verdict": "suspicious",
					"remediationStatus": "none", "roles": []any{}, "tags": []any{}, "ipAddress": fmt.Sprintf("185.220.%d.%d", i/250%250, i%250+1), "countryLetterCode": "DE",
				},
				map[string]any{
					"@odata.type": "#microsoft.graph.security.urlEvidence", "createdDateTime": lu.Format(time.RFC3339Nano), "verdict": "malicious",
					"remediationStatus": "none", "roles": []any{}, "tags": []any{}, "url": fmt.Sprintf("https://evil-%d.example.net/path/%d?x=y", i%97, i),
				},
			},
		})
	}
	data, err := json.Marshal(map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2", "value": alerts})
	if err != nil {
		panic(err)
	}
	return data
}

func reportAlerts(b *testing.B, n int) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "alerts/s")
}

func BenchmarkDecodeAndConvertPage(b *testing.B) {
	page := benchPage(500)
	observed := goldenObserved
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	var scratch []indicator
	for b.Loop() {
		lrs := plog.NewLogRecordSlice()
		if _, err := decodePage(page, lrs); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < lrs.Len(); i++ {
			_, scratch = convertAlert(lrs.At(i), observed, "", scratch)
		}
	}
	reportAlerts(b, 500)
}

func BenchmarkExtractIndicators(b *testing.B) {
	page := benchPage(500)
	lrs := plog.NewLogRecordSlice()
	if _, err := decodePage(page, lrs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var scratch []indicator
	for b.Loop() {
		for i := 0; i < lrs.Len(); i++ {
			scratch = extractIndicators(lrs.At(i).Body().Map(), scratch[:0])
		}
	}
	reportAlerts(b, 500)
}

// BenchmarkFloorDecodeMap: plain encoding/json of the same bytes into map[string]any.
func BenchmarkFloorDecodeMap(b *testing.B) {
	page := benchPage(500)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(page, &m); err != nil {
			b.Fatal(err)
		}
	}
	reportAlerts(b, 500)
}

type floorFile struct {
	Sha1          string `json:"sha1"`
	Sha256        string `json:"sha256"`
	FileName      string `json:"fileName"`
	FilePath      string `json:"filePath"`
	FilePublisher string `json:"filePublisher"`
	FileSize      int64  `json:"fileSize"`
	Issuer        string `json:"issuer"`
	Signer        string `json:"signer"`
}

type floorEvidence struct {
	ODataType         string     `json:"@odata.type"`
	CreatedDateTime   time.Time  `json:"createdDateTime"`
	Verdict           string     `json:"verdict"`
	RemediationStatus string     `json:"remediationStatus"`
	Roles             []string   `json:"roles"`
	Tags              []string   `json:"tags"`
	DetectionStatus   string     `json:"detectionStatus"`
	MdeDeviceID       string     `json:"mdeDeviceId"`
	FileDetails       *floorFile `json:"fileDetails"`
	IPAddress         string     `json:"ipAddress"`
	CountryLetterCode string     `json:"countryLetterCode"`
	URL               string     `json:"url"`
}

type floorAlert struct {
	ODataType          string          `json:"@odata.type"`
	ID                 string          `json:"id"`
	ProviderAlertID    string          `json:"providerAlertId"`
	IncidentID         string          `json:"incidentId"`
	Status             string          `json:"status"`
	Severity           string          `json:"severity"`
	Classification     string          `json:"classification"`
	Determination      string          `json:"determination"`
	ServiceSource      string          `json:"serviceSource"`
	DetectionSource    string          `json:"detectionSource"`
	ProductName        string          `json:"productName"`
	DetectorID         string          `json:"detectorId"`
	TenantID           string          `json:"tenantId"`
	Title              string          `json:"title"`
	Description        string          `json:"description"`
	RecommendedActions string          `json:"recommendedActions"`
	Category           string          `json:"category"`
	AssignedTo         string          `json:"assignedTo"`
	AlertWebURL        string          `json:"alertWebUrl"`
	IncidentWebURL     string          `json:"incidentWebUrl"`
	ThreatDisplayName  string          `json:"threatDisplayName"`
	ThreatFamilyName   string          `json:"threatFamilyName"`
	MitreTechniques    []string        `json:"mitreTechniques"`
	CreatedDateTime    time.Time       `json:"createdDateTime"`
	LastUpdateDateTime time.Time       `json:"lastUpdateDateTime"`
	ResolvedDateTime   *time.Time      `json:"resolvedDateTime"`
	Comments           []any           `json:"comments"`
	SystemTags         []string        `json:"systemTags"`
	Evidence           []floorEvidence `json:"evidence"`
}

// BenchmarkFloorDecodeStruct: plain encoding/json of the same bytes into structs.
func BenchmarkFloorDecodeStruct(b *testing.B) {
	page := benchPage(500)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		var p struct {
			NextLink string       `json:"@odata.nextLink"`
			Value    []floorAlert `json:"value"`
		}
		if err := json.Unmarshal(page, &p); err != nil {
			b.Fatal(err)
		}
	}
	reportAlerts(b, 500)
}
