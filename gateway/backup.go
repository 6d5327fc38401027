package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tether-iot/tether/gateway/internal/store"
)

// The store's safety (issue 10.5): a damaged gateway.db is refused at
// start with a message that says what to do (store.DamagedError), unless
// Config.FreshStore moves it aside; and a running gateway's store can be
// backed up at any time: Backup writes a consistent snapshot (bbolt's
// Tx.WriteTo in one read transaction) while the gateway serves. tether
// backup asks the running gateway for it through its admin socket (this
// user only), or copies the store itself if no gateway runs.

// Backup writes a consistent copy of the store to w while the gateway
// runs, and returns its size. The copy is a gateway.db: stop the gateway
// and put it in place of the damaged one to restore.
func (g *Gateway) Backup(w io.Writer) (int64, error) {
	if g.isClosed() {
		return 0, ErrClosed
	}
	return g.st.Backup(w)
}

// serveBackup is the admin socket's GET /v1/backup.
func (g *Gateway) serveBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := g.Backup(w); err != nil {
		g.log.Warn("backup failed", "err", err)
	}
}

// BackupTo writes a backup of the store of the gateway running on data
// directory data (through its admin socket), or, if none runs, of the
// store itself, to the file to (written whole, then renamed: a failed
// backup leaves no partial file), and returns its size. online says
// whether a running gateway made it.
func BackupTo(ctx context.Context, data, to string) (n int64, online bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(to), ".tether-backup-*")
	if err != nil {
		return 0, false, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, online, err = backupInto(ctx, data, tmp)
	if err != nil {
		return n, online, err
	}
	if err = tmp.Sync(); err != nil {
		return n, online, fmt.Errorf("backup: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return n, online, fmt.Errorf("backup: %w", err)
	}
	if err = store.Verify(tmp.Name()); err != nil {
		return n, online, fmt.Errorf("backup: the copy does not check: %w", err)
	}
	if err = os.Rename(tmp.Name(), to); err != nil {
		return n, online, fmt.Errorf("backup: %w", err)
	}
	return n, online, nil
}

func backupInto(ctx context.Context, data string, w io.Writer) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway/v1/backup", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := adminClient(data).Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return 0, true, fmt.Errorf("gateway: %s", strings.TrimSpace(string(b)))
		}
		n, err := io.Copy(w, resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return n, true, fmt.Errorf("backup: %w", err)
		}
		return n, true, nil
	}
	if !notRunning(err) {
		return 0, false, fmt.Errorf("gateway: admin socket: %w", err)
	}
	st, err := store.Open(data, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return 0, false, fmt.Errorf("%w, but its admin socket does not answer (%s)", ErrStoreLocked, filepath.Join(data, AdminSocket))
	}
	if err != nil {
		return 0, false, err
	}
	defer st.Close()
	n, err := st.Backup(w)
	return n, false, err
}
