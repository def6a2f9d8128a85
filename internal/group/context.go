package group

import "context"

// clientInfo is who sent a request, as the protocol layer knows it from
// the request header and the connection.
type clientInfo struct{ id, host string }

type clientKey struct{}

// WithClient attaches the request header's client id and the client's
// address to ctx. The coordinator reports them in DescribeGroups and
// ConsumerGroupDescribe and uses the client id as the member-id prefix.
func WithClient(ctx context.Context, clientID, host string) context.Context {
	return context.WithValue(ctx, clientKey{}, clientInfo{id: clientID, host: host})
}

func clientFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci
}
