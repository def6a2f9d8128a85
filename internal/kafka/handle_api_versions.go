package kafka

// ApiVersions (key 18), versions 0–4.
//
// Answers with exactly the keys and version ranges this server serves
// (apis.go plus the group coordinator's keys). A request whose version is
// above the highest served is answered by conn.dispatch, before decoding,
// with a v0 response carrying UNSUPPORTED_VERSION (35) and the key list
// (KIP-511), so the client can retry with a version both sides know. The
// response header is always v0, even for the flexible versions 3+.
//
// v3+ (KIP-511) carry ClientSoftwareName and ClientSoftwareVersion; values
// that do not match Kafka's pattern [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
// get INVALID_REQUEST (42), as Kafka answers. Feature flags (KIP-584) are
// left empty: this broker has none to finalize.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleAPIVersions(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.ApiVersionsRequest)
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.Version >= 3 && (!validSoftwareName(r.ClientSoftwareName) || !validSoftwareName(r.ClientSoftwareVersion)) {
		resp.ErrorCode = errInvalidRequest
	}
	resp.ApiKeys = c.s.apiKeys
	sl.respond(resp)
}

// validSoftwareName reports whether s matches
// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareName(s string) bool {
	if s == "" {
		return false
	}
	alnum := func(b byte) bool {
		return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if alnum(b) {
			continue
		}
		if (b == '-' || b == '.') && i > 0 && i < len(s)-1 {
			continue
		}
		return false
	}
	return true
}
