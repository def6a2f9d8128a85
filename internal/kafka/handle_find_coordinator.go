package kafka

// FindCoordinator (key 10), versions 0–6.
//
// One node: this node coordinates every consumer group. v0–v3 ask for one
// key; v4+ (KIP-699) batch keys and answer per key in Coordinators.
// KeyType 0 is a group. KeyType 1 (transactional id) gets
// COORDINATOR_NOT_AVAILABLE until transactions exist (clients then retry or
// fail InitProducerId with a clear error); any other key type (v6: 2,
// share groups, KIP-932) gets INVALID_REQUEST until share groups exist. v1+ carry an error message with each error.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleFindCoordinator(c *conn, sl *slot, req kmsg.Request, _ *header) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	cfg := &c.s.cfg
	answer := func(string) (code int16, msg *string) {
		switch {
		case r.CoordinatorType == 1:
			return errCoordinatorNotAvailable, kmsg.StringPtr("transactions are not supported yet")
		case r.CoordinatorType != 0:
			return errInvalidRequest, kmsg.StringPtr("unknown coordinator key type")
		}
		return errNone, nil
	}
	if r.Version < 4 {
		code, msg := answer(r.CoordinatorKey)
		resp.ErrorCode = code
		if code == errNone {
			resp.NodeID, resp.Host, resp.Port = cfg.NodeID, cfg.Host, cfg.Port
		} else {
			resp.NodeID, resp.Port = -1, -1
			if r.Version >= 1 {
				resp.ErrorMessage = msg
			}
		}
		sl.respond(resp)
		return
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, len(r.CoordinatorKeys))
	for i, key := range r.CoordinatorKeys {
		co := &resp.Coordinators[i]
		co.Key = key
		co.ErrorCode, co.ErrorMessage = answer(key)
		if co.ErrorCode == errNone {
			co.NodeID, co.Host, co.Port = cfg.NodeID, cfg.Host, cfg.Port
		} else {
			co.NodeID, co.Port = -1, -1
		}
	}
	sl.respond(resp)
}
