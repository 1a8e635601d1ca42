package emulator

import "net/http"

// foreignHandler stands for any host that is not Graph, such as an attacker's
// host in a forged @odata.nextLink. It records whether the caller sent
// credentials and refuses everything.
func (e *Emulator) foreignHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authorized := r.Header.Get("Authorization") != ""
		e.stats.foreignRequest(authorized)
		e.logf("foreign: %s %s (Authorization header sent: %t)", r.Method, r.URL.Path, authorized)
		writeGraphError(w, http.StatusForbidden, "Forbidden", "This host is not Microsoft Graph.")
	})
}
