package rarelog

import "testing"

func TestDue(t *testing.T) {
	var logged []uint64
	for n := uint64(1); n <= 300; n++ {
		if Due(n) {
			logged = append(logged, n)
		}
	}
	want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256}
	if len(logged) != len(want) {
		t.Fatalf("logged %v, want %v", logged, want)
	}
	for i := range want {
		if logged[i] != want[i] {
			t.Fatalf("logged %v, want %v", logged, want)
		}
	}
}
