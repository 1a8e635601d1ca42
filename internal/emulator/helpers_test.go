package emulator

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testStart and testEnd are the dataset range tests use: fixed for the run
// so datasets are reproducible, and in the past so that alerts added or
// updated "now" fall after it.
var (
	testEnd   = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	testStart = testEnd.Add(-24 * time.Hour)
)

func startEmulator(t testing.TB, cfg Config) *Emulator {
	t.Helper()
	if cfg.Start.IsZero() {
		cfg.Start, cfg.End = testStart, testEnd
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// httpClient trusts the emulator's CA and nothing else.
func httpClient(t testing.TB, e *Emulator) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(e.CACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

type testClient struct {
	t     testing.TB
	e     *Emulator
	http  *http.Client
	token string
}

func newTestClient(t testing.TB, e *Emulator) *testClient {
	c := &testClient{t: t, e: e, http: httpClient(t, e)}
	c.token = c.fetchToken()
	return c
}

func (c *testClient) fetchToken() string {
	c.t.Helper()
	cfg := c.e.Config()
	status, body := c.postForm(c.e.IdentityURL()+"/"+cfg.TenantID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret},
		"scope": {"https://graph.microsoft.com/.default"},
	})
	if status != http.StatusOK {
		c.t.Fatalf("token: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	mustDecode(c.t, body, &tok)
	return tok.AccessToken
}

func (c *testClient) postForm(u string, form url.Values) (int, []byte) {
	c.t.Helper()
	resp, err := c.http.PostForm(u, form)
	if err != nil {
		c.t.Fatal(err)
	}
	return readResponse(c.t, resp)
}

// get fetches a Graph URL (absolute, or a path on the Graph host) with the
// client's token.
func (c *testClient) get(u string, header ...string) (*http.Response, []byte) {
	c.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = c.e.GraphURL() + u
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Prefer", "include-unknown-enum-members")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	_, body := readResponse(c.t, resp)
	return resp, body
}

// graphPage is a list response.
type graphPage struct {
	Context  string            `json:"@odata.context"`
	NextLink string            `json:"@odata.nextLink"`
	Value    []json.RawMessage `json:"value"`
}

// listAll follows nextLinks from path and returns every item's id, in order,
// and the number of requests made.
func (c *testClient) listAll(path string) (ids []string, pages int) {
	c.t.Helper()
	for next := path; next != ""; pages++ {
		resp, body := c.get(next)
		if resp.StatusCode != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
		}
		var page graphPage
		mustDecode(c.t, body, &page)
		for _, v := range page.Value {
			var item struct{ ID string }
			mustDecode(c.t, v, &item)
			ids = append(ids, item.ID)
		}
		next = page.NextLink
	}
	return ids, pages
}

func readResponse(t testing.TB, resp *http.Response) (int, []byte) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func mustDecode(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %.200s: %v", data, err)
	}
}

// filterPath builds an alerts_v2 request path with the given options.
func filterPath(base string, options map[string]string) string {
	q := url.Values{}
	for k, v := range options {
		q.Set(k, v)
	}
	return base + "?" + q.Encode()
}
