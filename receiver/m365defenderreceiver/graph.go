package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v7"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/defender-ci/otelcol-defender-ci/internal/retry"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

// maxResponseBytes bounds a Graph response body; a larger one is refused
// (errOversize), never truncated.
const maxResponseBytes = 256 << 20

var errOversize = errors.New("response body over the size limit")

// graphStatusError is a Graph answer with a status that retrying does not fix.
type graphStatusError struct {
	status int
	msg    string
}

func (e *graphStatusError) Error() string { return e.msg }

// retrySettings bound the retries of one Graph request (tests shrink them).
type retrySettings struct {
	maxAttempts     int           // attempts per request (429, 5xx, network errors, malformed pages)
	initialInterval time.Duration // first backoff
	maxInterval     time.Duration // backoff cap
	maxRetryAfter   time.Duration // cap on a Retry-After wait
}

var defaultRetry = retrySettings{
	maxAttempts:     5,
	initialInterval: time.Second,
	maxInterval:     30 * time.Second,
	maxRetryAfter:   10 * time.Minute,
}

// graphClient sends GET requests to Graph with bearer tokens, rate limiting
// and the retry policy of the README.
type graphClient struct {
	http    *http.Client
	base    *url.URL
	tokens  *tokenSource // nil when an auth extension authenticates
	limiter *rate.Limiter
	prefer  bool
	retry   retrySettings
	logger  *zap.Logger
	tel     *metadata.TelemetryBuilder
	sleep   func(ctx context.Context, d time.Duration) error
	body    []byte // the last successful response body, reused (no page-sized garbage per page); valid until the next get
	maxBody int64  // maxResponseBytes; tests shrink it
}

func newGraphClient(base *url.URL, hc *http.Client, tokens *tokenSource, perMinute int, prefer bool, retry retrySettings, logger *zap.Logger, tel *metadata.TelemetryBuilder) *graphClient {
	g := &graphClient{http: hc, base: base, tokens: tokens, prefer: prefer, retry: retry, logger: logger, tel: tel, sleep: sleepCtx, maxBody: maxResponseBytes}
	if perMinute > 0 {
		g.limiter = rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/10))
	}
	return g
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d): // collected unfired since Go 1.23
		return nil
	}
}

func (g *graphClient) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, g.base.Scheme) && strings.EqualFold(u.Host, g.base.Host)
}

func (g *graphClient) count(ctx context.Context, outcome requestOutcome) {
	g.tel.M365DefenderRequests.Add(ctx, 1, outcome.attr())
}

// get fetches rawURL, which must be on the configured Graph origin;
// permission is named in a 403's error. The returned bytes are valid until the
// next call (callers copy what they keep).
func (g *graphClient) get(ctx context.Context, rawURL, permission string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid Graph URL: %w", err)
	}
	if !g.sameOrigin(u) {
		return nil, fmt.Errorf("refusing to send a request to %s://%s: not the configured Graph endpoint", u.Scheme, u.Host)
	}
	refreshed := false
	bo := retry.NewBackoff(g.retry.initialInterval, g.retry.maxInterval)
	for attempt := 1; ; attempt++ {
		if g.limiter != nil {
			if err := g.limiter.Wait(ctx); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		if g.prefer {
			req.Header.Set("Prefer", "include-unknown-enum-members")
		}
		if g.tokens != nil {
			tok, err := g.tokens.token(ctx)
			if err != nil {
				// azidentity already retried transient token failures.
				return nil, cmp.Or(ctx.Err(), err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := g.http.Do(req)
		if err != nil {
			if err := g.networkError(ctx, u, attempt, bo, err); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if resp.ContentLength > g.maxBody {
				resp.Body.Close()
				return nil, g.oversize(ctx, u, resp.ContentLength)
			}
			g.body = slices.Grow(g.body[:0], int(resp.ContentLength)+1)
			// One byte more than the limit tells a body at the limit from a longer one.
			err := g.readBody(io.LimitReader(resp.Body, g.maxBody+1))
			resp.Body.Close()
			if n := int64(len(g.body)); err == nil && n > g.maxBody {
				return nil, g.oversize(ctx, u, n)
			}
			if err != nil {
				if err := g.networkError(ctx, u, attempt, bo, fmt.Errorf("reading the body: %w", err)); err != nil {
					return nil, err
				}
				continue
			}
			g.count(ctx, outcomeSuccess)
			return g.body, nil
		}
		msg := graphErrorMessage(resp)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			g.count(ctx, outcomeThrottled)
			g.tel.M365DefenderThrottledResponses.Add(ctx, 1)
			d, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), g.retry.maxRetryAfter)
			if !ok {
				d = bo.NextBackOff()
			}
			if attempt >= g.retry.maxAttempts {
				return nil, fmt.Errorf("GET %s throttled by Graph (429) %d times; giving up for this poll", u.Path, attempt)
			}
			g.logger.Info("Graph throttled the request; waiting", zap.String("path", u.Path), zap.Duration("retry_after", d))
			if err := g.sleep(ctx, d); err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusUnauthorized:
			g.count(ctx, outcomeUnauthorized)
			if g.tokens != nil && !refreshed {
				refreshed = true
				attempt-- // the refresh is not a failed attempt
				g.logger.Info("Graph rejected the token (401); acquiring a new one")
				g.tokens.invalidate()
				continue
			}
			return nil, fmt.Errorf("GET %s: Graph returned 401 Unauthorized even with a fresh token: %s", u.Path, msg)
		case resp.StatusCode == http.StatusForbidden:
			g.count(ctx, outcomeForbidden)
			return nil, fmt.Errorf("GET %s: Graph returned 403 Forbidden: the app registration needs the Microsoft Graph application permission %s, granted with admin consent (Graph said: %s)", u.Path, permission, msg)
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
			g.count(ctx, outcomeServerError)
			if attempt >= g.retry.maxAttempts {
				return nil, fmt.Errorf("GET %s: Graph returned %d after %d attempts: %s", u.Path, resp.StatusCode, attempt, msg)
			}
			d := bo.NextBackOff()
			if ra, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now(), g.retry.maxRetryAfter); ok {
				d = max(d, ra)
			}
			g.logger.Warn("Graph server error; retrying", zap.String("path", u.Path), zap.Int("status", resp.StatusCode), zap.Duration("backoff", d))
			if err := g.sleep(ctx, d); err != nil {
				return nil, err
			}
		default:
			g.count(ctx, outcomeClientError)
			return nil, &graphStatusError{status: resp.StatusCode, msg: fmt.Sprintf("GET %s: Graph returned %d: %s", u.Path, resp.StatusCode, msg)}
		}
	}
}

// networkError counts a failed request or body read and waits before the
// next attempt; it returns the error to give up with.
func (g *graphClient) networkError(ctx context.Context, u *url.URL, attempt int, bo *backoff.ExponentialBackOff, err error) error {
	if ctx.Err() != nil {
		g.count(ctx, outcomeCanceled)
		return ctx.Err()
	}
	g.count(ctx, outcomeNetworkError)
	if attempt >= g.retry.maxAttempts {
		return fmt.Errorf("GET %s failed after %d attempts: %w", u.Path, attempt, err)
	}
	d := bo.NextBackOff()
	g.logger.Warn("Graph request failed; retrying", zap.String("path", u.Path), zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
	return g.sleep(ctx, d)
}

// oversize refuses a body over the limit and releases the buffer, so that one
// huge answer does not pin its size in memory.
func (g *graphClient) oversize(ctx context.Context, u *url.URL, size int64) error {
	g.count(ctx, outcomeOversize)
	g.body = nil
	return fmt.Errorf("GET %s: %w (more than %d bytes, at least %d sent); it is read again with a smaller $top", u.Path, errOversize, g.maxBody, size)
}

// readBody reads r into g.body. It grows by append's quarter, not by
// bytes.Buffer's doubling: the buffer kept after a backlog is at most ~1.25x
// the largest page (not 2x), and growing it holds 2.25x a page, not 3x.
func (g *graphClient) readBody(r io.Reader) error {
	for {
		if len(g.body) == cap(g.body) {
			g.body = slices.Grow(g.body, 512)
		}
		n, err := r.Read(g.body[len(g.body):cap(g.body)])
		g.body = g.body[:len(g.body)+n]
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// graphErrorMessage reads Graph's {"error": {"code", "message"}} and closes the body.
func graphErrorMessage(resp *http.Response) string {
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && (e.Error.Code != "" || e.Error.Message != "") {
		msg = strings.TrimSpace(e.Error.Code + ": " + e.Error.Message)
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return strings.ToValidUTF8(cmp.Or(msg, http.StatusText(resp.StatusCode)), "?")
}
