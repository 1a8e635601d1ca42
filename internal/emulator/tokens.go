package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// tokenStore issues opaque bearer tokens and validates them for Graph.
type tokenStore struct {
	lifetime time.Duration
	mu       sync.Mutex
	issued   map[string]issuedToken
	// generation is bumped by the ExpireTokens fault: tokens of an older
	// generation are rejected as expired.
	generation int
}

type issuedToken struct {
	expires    time.Time
	generation int
}

type tokenStatus int

const (
	tokenValid tokenStatus = iota
	tokenUnknown
	tokenExpired
)

func newTokenStore(lifetime time.Duration) *tokenStore {
	return &tokenStore{lifetime: lifetime, issued: map[string]issuedToken{}}
}

func (s *tokenStore) issue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := "eyJ0eXAiOiJKV1QiLCJlbXUiOjF9." + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[token] = issuedToken{expires: time.Now().Add(s.lifetime), generation: s.generation}
	return token
}

func (s *tokenStore) check(token string) tokenStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.issued[token]
	switch {
	case !ok:
		return tokenUnknown
	case t.generation != s.generation || time.Now().After(t.expires):
		return tokenExpired
	}
	return tokenValid
}

// expireAll invalidates every token issued so far.
func (s *tokenStore) expireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
}

// all lists every token issued so far.
func (s *tokenStore) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.issued))
	for token := range s.issued {
		out = append(out, token)
	}
	return out
}
