package passwd

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Hashes of the mosquitto_passwd format, which mosquitto (the MQTT broker)
// and Tether's embedded broker read: "$7$" (mosquitto 2: PBKDF2-SHA512,
// $7$iterations$base64 salt$base64 key) and "$6$" (mosquitto 1.x: SHA-512
// of the password then the salt, $6$base64 salt$base64 hash; one round:
// weak, accepted so that an old file keeps working).

// MaxIterations is the highest PBKDF2 iteration count accepted in a
// "$7$" hash, for the same reason as MaxCost: 1,000,000 iterations take
// about a second (mosquitto_passwd writes 101, tether mqtt passwd
// 10,000).
const MaxIterations = 1_000_000

// MosquittoIterations is the PBKDF2 iteration count of HashMosquitto.
const MosquittoIterations = 10_000

// Formats of a hash (Format).
const (
	FormatBcrypt = "bcrypt"        // $2a$, $2b$, $2y$: tether web passwd, htpasswd -B
	FormatPBKDF2 = "pbkdf2-sha512" // $7$: mosquitto_passwd, tether mqtt passwd
	FormatSHA512 = "sha512"        // $6$: mosquitto_passwd -H sha512 (mosquitto 1.x)
)

// mosquittoHash is a parsed "$7$" or "$6$" hash.
type mosquittoHash struct {
	iter      int // 0 for $6$
	salt, key []byte
}

// parseMosquitto parses a "$7$" or "$6$" hash.
func parseMosquitto(hash string) (mosquittoHash, error) {
	enc := base64.StdEncoding
	parts := strings.Split(hash, "$")
	switch {
	case len(parts) == 5 && parts[0] == "" && parts[1] == "7":
		iter, err := strconv.Atoi(parts[2])
		if err != nil || iter < 1 {
			return mosquittoHash{}, fmt.Errorf("bad iteration count %q in a $7$ hash", parts[2])
		}
		if iter > MaxIterations {
			return mosquittoHash{}, fmt.Errorf("%d iterations is over %d: every login would take seconds", iter, MaxIterations)
		}
		salt, err1 := enc.DecodeString(parts[3])
		key, err2 := enc.DecodeString(parts[4])
		if err1 != nil || err2 != nil || len(key) == 0 {
			return mosquittoHash{}, errors.New("bad base64 in a $7$ hash")
		}
		return mosquittoHash{iter: iter, salt: salt, key: key}, nil
	case len(parts) == 4 && parts[0] == "" && parts[1] == "6":
		salt, err1 := enc.DecodeString(parts[2])
		key, err2 := enc.DecodeString(parts[3])
		if err1 != nil || err2 != nil || len(key) != sha512.Size {
			return mosquittoHash{}, errors.New("bad base64 in a $6$ hash")
		}
		return mosquittoHash{salt: salt, key: key}, nil
	}
	return mosquittoHash{}, errors.New("not a mosquitto_passwd hash ($7$ or $6$)")
}

// match reports whether password is h's.
func (h mosquittoHash) match(password string) bool {
	var got []byte
	if h.iter == 0 {
		s := sha512.New()
		s.Write([]byte(password))
		s.Write(h.salt)
		got = s.Sum(nil)
	} else {
		var err error
		if got, err = pbkdf2.Key(sha512.New, password, h.salt, h.iter, len(h.key)); err != nil {
			return false
		}
	}
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// CheckMosquitto checks that hash is a "$7$" or "$6$" hash that costs at
// most MaxIterations.
func CheckMosquitto(hash string) error {
	_, err := parseMosquitto(hash)
	return err
}

// MatchMosquitto reports whether password is hash's, a "$7$" or "$6$"
// hash; false if hash is not one.
func MatchMosquitto(hash, password string) bool {
	h, err := parseMosquitto(hash)
	return err == nil && h.match(password)
}

// HashMosquitto returns password's "$7$" hash (PBKDF2-SHA512,
// MosquittoIterations, a random 12-byte salt), as mosquitto_passwd
// writes it.
func HashMosquitto(password string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, MosquittoIterations, sha512.Size)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding
	return fmt.Sprintf("$7$%d$%s$%s", MosquittoIterations, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Format returns the format of hash (FormatBcrypt, FormatPBKDF2 or
// FormatSHA512), or an error if it is none of them or costs more than
// MaxCost or MaxIterations.
func Format(hash string) (string, error) {
	if strings.HasPrefix(hash, "$2") {
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return "", fmt.Errorf("not a bcrypt hash (%v)", err)
		}
		if cost > MaxCost {
			return "", fmt.Errorf("bcrypt cost %d is over %d: every login would take seconds", cost, MaxCost)
		}
		return FormatBcrypt, nil
	}
	h, err := parseMosquitto(hash)
	if err != nil && !strings.HasPrefix(hash, "$7$") && !strings.HasPrefix(hash, "$6$") {
		return "", errors.New("not a bcrypt hash nor a mosquitto_passwd one ($7$ or $6$)")
	}
	if err != nil {
		return "", err
	}
	if h.iter == 0 {
		return FormatSHA512, nil
	}
	return FormatPBKDF2, nil
}

// work estimates what checking a password against hash costs, in
// microseconds of a small machine: to check unknown users against a hash
// as costly as the costliest in a file.
func work(hash string) float64 {
	if cost, err := bcrypt.Cost([]byte(hash)); err == nil {
		return float64(int(1)<<cost) * 146 // cost 10: about 150 ms
	}
	if h, err := parseMosquitto(hash); err == nil {
		return float64(max(h.iter, 1)) * 1.5 // 10,000 iterations: about 15 ms
	}
	return 0
}
