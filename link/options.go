package link

// WriteOption changes how Write sends one message.
type WriteOption func(*writeOpts)

type writeOpts struct {
	qos, wait bool
	reuse     bool
	reuseID   uint8
	assign    func(id uint8) error
}

// QoS sets whether the message is repeated until acknowledged (true, the
// default) or sent once and possibly lost in an outage (false). With qos,
// Write returns once the peer has acknowledged the message.
func QoS(on bool) WriteOption { return func(o *writeOpts) { o.qos = on } }

// Wait sets whether a qos message waits until every earlier qos message
// has been acknowledged before it is sent (true, the default: order is
// kept), or is sent at once (false: faster, but a repeat may overtake a
// later message).
func Wait(on bool) WriteOption { return func(o *writeOpts) { o.wait = on } }

// Assign is for durable queues: fn is called with the id given to the
// message, before the message is first sent and with the link's lock held
// (fn must not call the link). If fn returns an error, Write returns it and
// the message is not sent; the id is not used.
func Assign(fn func(id uint8) error) WriteOption { return func(o *writeOpts) { o.assign = fn } }

// Reuse is for durable queues: the message is sent with id, which it was
// given (see Assign) before this process restarted, instead of the next id
// in the sequence. The peer that saw it before acknowledges it again
// without delivering it twice.
func Reuse(id uint8) WriteOption {
	return func(o *writeOpts) { o.reuse, o.reuseID = true, id }
}
