package collectiveinsightsexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wire bytes of hostile text: HTML characters and non-ASCII text as
// they are, control characters, U+2028/U+2029 and invalid UTF-8 escaped.
func TestEncoderEscaping(t *testing.T) {
	hostile := manyAlerts(3, 2)
	hostile[0].title = "quote \" backslash \\ newline \n tab \t ctrl \x01 line sep \u2028 para \u2029 <html> & é 日本"
	hostile[1].family = "bad \xff utf8"
	cfg := createDefaultConfig().(*Config)
	ptrs := mappedEntries(cfg, logsOf(hostile...))
	require.NotEmpty(t, ptrs)
	body := string(newBodyEncoder(cfg).appendBody(nil, ptrs))
	assert.Contains(t, body, `"name":"quote \" backslash \\ newline \n tab \t ctrl \u0001 line sep \u2028 para \u2029 <html> & é 日本"`)
	assert.Contains(t, body, `"malwares":["bad \ufffd utf8"]`)
}
