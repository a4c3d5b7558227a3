package minisign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"
)

// Algorithm and format tags of minisign's binary structures.
var (
	algEd     = [2]byte{'E', 'd'} // keys; legacy signatures
	algHashed = [2]byte{'E', 'D'} // signatures over a BLAKE2b-512 prehash
	kdfScrypt = [2]byte{'S', 'c'}
	kdfNone   = [2]byte{0, 0}
	chkBlake2 = [2]byte{'B', '2'}
)

const (
	commentPrefix        = "untrusted comment: "
	trustedCommentPrefix = "trusted comment: "
	// maxTrustedComment is minisign's limit, prefix included.
	maxTrustedComment = 8192
	maxLine           = 8192 + 1024
)

// KeyID identifies a key pair; signatures carry it.
type KeyID [8]byte

// String is how minisign prints key ids: upper-case hex of the id read as
// a little-endian number.
func (id KeyID) String() string {
	return fmt.Sprintf("%X", binary.LittleEndian.Uint64(id[:]))
}

// PublicKey is a minisign public key.
type PublicKey struct {
	ID  KeyID
	Key ed25519.PublicKey
}

// PrivateKey is a decrypted minisign secret key.
type PrivateKey struct {
	ID  KeyID
	Key ed25519.PrivateKey
}

// Public returns the key's public half.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}
}

// GenerateKey makes a new key pair from rand (crypto/rand when nil).
func GenerateKey(r io.Reader) (PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return PrivateKey{}, err
	}
	var id KeyID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey{ID: id, Key: priv}, nil
}

// String is the public key as its one base64 line, as `minisign -P` takes it.
func (k PublicKey) String() string {
	b := make([]byte, 0, 42)
	b = append(b, algEd[:]...)
	b = append(b, k.ID[:]...)
	b = append(b, k.Key...)
	return base64.StdEncoding.EncodeToString(b)
}

// MarshalText is the public key file minisign writes (minisign.pub).
func (k PublicKey) MarshalText() ([]byte, error) {
	return []byte(commentPrefix + "minisign public key " + k.ID.String() + "\n" + k.String() + "\n"), nil
}

// Equal reports whether two public keys are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	return k.ID == o.ID && k.Key.Equal(o.Key)
}

// ParsePublicKey reads a public key: its base64 line alone, or a public
// key file (a comment line, then the base64 line).
func ParsePublicKey(s string) (PublicKey, error) {
	line := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(line, commentPrefix); ok {
		_, after, found := strings.Cut(rest, "\n")
		if !found {
			return PublicKey{}, errors.New("minisign public key: a comment line and no key after it")
		}
		line = strings.TrimSpace(after)
	}
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil || len(raw) != 2+8+ed25519.PublicKeySize {
		return PublicKey{}, errors.New("minisign public key: want 56 base64 characters starting with RW (as `minisign -G` writes to minisign.pub)")
	}
	if !bytes.Equal(raw[:2], algEd[:]) {
		return PublicKey{}, fmt.Errorf("minisign public key: algorithm %q, want Ed", raw[:2])
	}
	var k PublicKey
	copy(k.ID[:], raw[2:10])
	k.Key = ed25519.PublicKey(bytes.Clone(raw[10:]))
	return k, nil
}

// secretKeyLen is the size of minisign's SeckeyStruct.
const secretKeyLen = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32

// ErrPasswordNeeded means a secret key is encrypted and no password was given.
var ErrPasswordNeeded = errors.New("minisign secret key: the key is encrypted and needs its password")

// ErrWrongPassword means the password does not decrypt the key.
var ErrWrongPassword = errors.New("minisign secret key: wrong password for that key (its checksum does not match)")

// ParsePrivateKey reads a secret key file as `minisign -G` writes it. An
// encrypted key (the default of minisign) is decrypted with the password
// password returns; password may be nil for unencrypted keys (`-W`).
// Decryption uses scrypt with the key file's own cost, which for keys
// made by minisign is 1 GiB of memory for about a second.
func ParsePrivateKey(data []byte, password func() ([]byte, error)) (PrivateKey, error) {
	text := strings.TrimSpace(string(data))
	rest, ok := strings.CutPrefix(text, commentPrefix)
	if !ok {
		return PrivateKey{}, errors.New(`minisign secret key: want a file starting with "untrusted comment:", as minisign -G writes`)
	}
	_, line, found := strings.Cut(rest, "\n")
	line = strings.TrimSpace(line)
	if !found || line == "" {
		return PrivateKey{}, errors.New("minisign secret key: no key line after the comment")
	}
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil || len(raw) != secretKeyLen {
		return PrivateKey{}, fmt.Errorf("minisign secret key: the key line is not %d bytes of base64", secretKeyLen)
	}
	var (
		sigAlg, kdfAlg, chkAlg [2]byte
		salt                   = raw[6:38]
		ops                    = binary.LittleEndian.Uint64(raw[38:46])
		mem                    = binary.LittleEndian.Uint64(raw[46:54])
		keynum                 = bytes.Clone(raw[54:]) // id(8) sk(64) chk(32)
	)
	copy(sigAlg[:], raw[0:2])
	copy(kdfAlg[:], raw[2:4])
	copy(chkAlg[:], raw[4:6])
	switch {
	case sigAlg != algEd:
		return PrivateKey{}, fmt.Errorf("minisign secret key: algorithm %q, want Ed", sigAlg[:])
	case chkAlg != chkBlake2:
		return PrivateKey{}, fmt.Errorf("minisign secret key: checksum function %q, want B2", chkAlg[:])
	}
	switch kdfAlg {
	case kdfNone:
	case kdfScrypt:
		if password == nil {
			return PrivateKey{}, ErrPasswordNeeded
		}
		pw, err := password()
		if err != nil {
			return PrivateKey{}, fmt.Errorf("minisign secret key: password: %w", err)
		}
		if len(pw) == 0 {
			return PrivateKey{}, ErrPasswordNeeded
		}
		n, r, p, err := scryptParams(ops, mem)
		if err != nil {
			return PrivateKey{}, err
		}
		stream, err := scrypt.Key(pw, salt, n, r, p, len(keynum))
		if err != nil {
			return PrivateKey{}, fmt.Errorf("minisign secret key: derive the key from the password: %w", err)
		}
		subtle.XORBytes(keynum, keynum, stream)
	default:
		return PrivateKey{}, fmt.Errorf("minisign secret key: key derivation %q, want Sc or none", kdfAlg[:])
	}
	var k PrivateKey
	copy(k.ID[:], keynum[:8])
	k.Key = ed25519.PrivateKey(bytes.Clone(keynum[8:72]))
	// minisign leaves the checksum of an unencrypted key zero.
	unchecked := kdfAlg == kdfNone && bytes.Equal(keynum[72:], make([]byte, 32))
	if !unchecked && subtle.ConstantTimeCompare(checksum(sigAlg, k.ID, k.Key), keynum[72:]) != 1 {
		if kdfAlg == kdfScrypt {
			return PrivateKey{}, ErrWrongPassword
		}
		return PrivateKey{}, errors.New("minisign secret key: its checksum does not match; the file is damaged")
	}
	return k, nil
}

// MarshalText is the key as an unencrypted secret key file (`minisign -G
// -W`). Keep it secret: whoever has it signs as the project.
func (k PrivateKey) MarshalText() ([]byte, error) {
	raw := make([]byte, 0, secretKeyLen)
	raw = append(raw, algEd[:]...)
	raw = append(raw, kdfNone[:]...)
	raw = append(raw, chkBlake2[:]...)
	raw = append(raw, make([]byte, 32+8+8)...) // salt, opslimit, memlimit: unused
	raw = append(raw, k.ID[:]...)
	raw = append(raw, k.Key...)
	raw = append(raw, checksum(algEd, k.ID, k.Key)...)
	return []byte(commentPrefix + "minisign secret key " + k.ID.String() + " (unencrypted)\n" +
		base64.StdEncoding.EncodeToString(raw) + "\n"), nil
}

// checksum is minisign's check of a secret key: BLAKE2b-256 of the
// algorithm, id and key.
func checksum(alg [2]byte, id KeyID, key []byte) []byte {
	h, _ := blake2b.New256(nil)
	h.Write(alg[:])
	h.Write(id[:])
	h.Write(key)
	return h.Sum(nil)
}

// scryptParams turns libsodium's opslimit and memlimit for
// crypto_pwhash_scryptsalsa208sha256 into scrypt's N, r and p, as
// libsodium does (its pickparams), refusing costs beyond what minisign
// itself uses so a hostile key file cannot exhaust memory.
func scryptParams(ops, mem uint64) (n, r, p int, err error) {
	const maxMem = 1 << 31 // twice minisign's 1 GiB default
	if mem > maxMem {
		return 0, 0, 0, fmt.Errorf("minisign secret key: scrypt memory limit %d bytes is more than %d", mem, uint64(maxMem))
	}
	if ops < 32768 {
		ops = 32768
	}
	r = 8
	var logN uint
	if ops < mem/32 {
		p = 1
		maxN := ops / uint64(r*4)
		for logN = 1; logN < 63; logN++ {
			if uint64(1)<<logN > maxN/2 {
				break
			}
		}
	} else {
		maxN := mem / uint64(r*128)
		for logN = 1; logN < 63; logN++ {
			if uint64(1)<<logN > maxN/2 {
				break
			}
		}
		maxRP := (ops / 4) / (uint64(1) << logN)
		if maxRP > 0x3fffffff {
			maxRP = 0x3fffffff
		}
		p = int(uint32(maxRP) / uint32(r))
	}
	if logN > 30 || p < 1 || uint64(128)*uint64(r)*uint64(p)*(uint64(1)<<logN) > 1<<34 {
		return 0, 0, 0, fmt.Errorf("minisign secret key: scrypt cost N=2^%d r=%d p=%d is out of range", logN, r, p)
	}
	return 1 << logN, r, p, nil
}

// Signature is a parsed minisign signature file.
type Signature struct {
	KeyID          KeyID
	TrustedComment string
	sig            [ed25519.SignatureSize]byte
	global         [ed25519.SignatureSize]byte
}

// Sign signs the content r yields with k, prehashed, and returns the
// signature file. The trusted comment is signed too; it may not hold a
// line break.
func Sign(k PrivateKey, r io.Reader, trustedComment string) ([]byte, error) {
	if strings.ContainsAny(trustedComment, "\r\n") || len(trustedComment) >= maxTrustedComment-len(trustedCommentPrefix) {
		return nil, errors.New("minisign: the trusted comment must be one line shorter than 8 KiB")
	}
	digest, err := prehash(r)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(k.Key, digest)
	global := ed25519.Sign(k.Key, append(bytes.Clone(sig), trustedComment...))
	bin := make([]byte, 0, 74)
	bin = append(bin, algHashed[:]...)
	bin = append(bin, k.ID[:]...)
	bin = append(bin, sig...)
	var out bytes.Buffer
	fmt.Fprintf(&out, "%ssignature from kiln secret key %s\n", commentPrefix, k.ID)
	out.WriteString(base64.StdEncoding.EncodeToString(bin) + "\n")
	out.WriteString(trustedCommentPrefix + trustedComment + "\n")
	out.WriteString(base64.StdEncoding.EncodeToString(global) + "\n")
	return out.Bytes(), nil
}

func prehash(r io.Reader) ([]byte, error) {
	h, _ := blake2b.New512(nil)
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("minisign: read the signed content: %w", err)
	}
	return h.Sum(nil), nil
}

// ParseSignature reads a signature file.
func ParseSignature(data []byte) (*Signature, error) {
	if len(data) > 4*maxLine {
		return nil, errors.New("minisign signature: longer than any signature file")
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	if len(lines) != 4 {
		return nil, fmt.Errorf("minisign signature: %d lines, want 4 (comment, signature, trusted comment, global signature)", len(lines))
	}
	if !strings.HasPrefix(lines[0], commentPrefix) {
		return nil, errors.New(`minisign signature: line 1 does not start with "untrusted comment: "`)
	}
	bin, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(bin) != 2+8+ed25519.SignatureSize {
		return nil, errors.New("minisign signature: line 2 is not a base64 signature of 74 bytes")
	}
	switch [2]byte(bin[:2]) {
	case algHashed:
	case algEd:
		return nil, errors.New("minisign signature: legacy (not prehashed) signature; kiln makes and accepts only prehashed ones")
	default:
		return nil, fmt.Errorf("minisign signature: algorithm %q, want ED", bin[:2])
	}
	tc, ok := strings.CutPrefix(lines[2], trustedCommentPrefix)
	if !ok {
		return nil, errors.New(`minisign signature: line 3 does not start with "trusted comment: "`)
	}
	global, err := base64.StdEncoding.DecodeString(lines[3])
	if err != nil || len(global) != ed25519.SignatureSize {
		return nil, errors.New("minisign signature: line 4 is not a base64 signature of 64 bytes")
	}
	s := &Signature{TrustedComment: tc}
	copy(s.KeyID[:], bin[2:10])
	copy(s.sig[:], bin[10:])
	copy(s.global[:], global)
	return s, nil
}

// VerifyError says why a signature does not verify.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string { return "minisign: " + e.Reason }

// Verify checks that sig is k's signature of what r yields, trusted
// comment included. A signature that does not verify is a *VerifyError.
func (k PublicKey) Verify(r io.Reader, sig *Signature) error {
	if sig.KeyID != k.ID {
		return &VerifyError{Reason: fmt.Sprintf("signed with key %s, not with the given key %s", sig.KeyID, k.ID)}
	}
	digest, err := prehash(r)
	if err != nil {
		return err
	}
	if !ed25519.Verify(k.Key, digest, sig.sig[:]) {
		return &VerifyError{Reason: "signature verification failed: the content is not what key " + k.ID.String() + " signed"}
	}
	if !ed25519.Verify(k.Key, append(bytes.Clone(sig.sig[:]), sig.TrustedComment...), sig.global[:]) {
		return &VerifyError{Reason: "the trusted comment was changed after signing"}
	}
	return nil
}
