package adversarial

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestBackupUnderLoad (issue 10.5): online backups of the store while
// the honest node's traffic flows pause nothing beyond the usual bound.
func TestBackupUnderLoad(t *testing.T) {
	h := start(t, options{})
	dir := t.TempDir()
	var e errs
	h.attack(func(ctx context.Context) {
		for i := range 5 {
			f, err := os.Create(filepath.Join(dir, "backup"+string(rune('0'+i))+".db"))
			if err != nil {
				e.add(err)
				return
			}
			if n, err := h.g.Backup(f); err != nil || n == 0 {
				e.add(err)
			}
			e.add(f.Close())
			hold(ctx, T/2)
		}
	})
	e.check(t)
}
