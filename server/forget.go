package server

import (
	"errors"
	"fmt"
)

// ErrNodeUp is returned by Forget for a node whose link is up.
var ErrNodeUp = errors.New("server: the node's link is up")

// Forget drops the link of node id, which must be down: the server no
// longer lists it (Nodes, Links, Lookup) and its state in memory goes.
// The ID's next connection makes a new link, through Config.Configure (a
// gateway resumes it from its store there). A connection of that ID in
// its handshake at that moment is closed; the node connects again. It
// returns ErrUnknownNode if the ID has no link, ErrNodeUp if it is up.
func (s *Server) Forget(id string) error {
	s.mu.Lock()
	l := s.nodes[id]
	switch {
	case l == nil:
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownNode, id)
	case l.Up():
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNodeUp, id)
	}
	delete(s.nodes, id)
	s.mu.Unlock()
	s.ident.forget(id)
	l.Close()
	return nil
}
