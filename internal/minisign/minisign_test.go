package minisign

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/scrypt"
)

// minisignTool returns the path of the minisign program (Debian package
// minisign, installed by make deps).
func minisignTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		t.Fatalf("minisign is not installed (apt-get install minisign; make deps does): %v", err)
	}
	return p
}

func run(t *testing.T, dir, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestRoundTrip(t *testing.T) {
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("streams/v1/index.json content\n")
	sigData, err := Sign(k, bytes.NewReader(msg), "timestamp:1\tfile:index.json")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ParseSignature(sigData)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Verify(bytes.NewReader(msg), sig); err != nil {
		t.Fatalf("own signature does not verify: %v", err)
	}
	if sig.TrustedComment != "timestamp:1\tfile:index.json" {
		t.Errorf("trusted comment %q", sig.TrustedComment)
	}
	var ve *VerifyError
	if err := k.Public().Verify(bytes.NewReader(append(msg, 'x')), sig); !errors.As(err, &ve) {
		t.Errorf("changed content: %v, want a VerifyError", err)
	}
	// A changed trusted comment breaks the global signature.
	forged := bytes.Replace(sigData, []byte("file:index.json"), []byte("file:other.json"), 1)
	fs, err := ParseSignature(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Verify(bytes.NewReader(msg), fs); !errors.As(err, &ve) || !strings.Contains(err.Error(), "trusted comment") {
		t.Errorf("changed trusted comment: %v", err)
	}
	other, _ := GenerateKey(nil)
	if err := other.Public().Verify(bytes.NewReader(msg), sig); !errors.As(err, &ve) || !strings.Contains(err.Error(), "signed with key") {
		t.Errorf("other key: %v", err)
	}
	// Keys survive their text forms.
	pubText, _ := k.Public().MarshalText()
	pub, err := ParsePublicKey(string(pubText))
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key file round trip: %v", err)
	}
	if pub2, err := ParsePublicKey(k.Public().String()); err != nil || !pub2.Equal(pub) {
		t.Fatalf("public key line round trip: %v", err)
	}
	secText, _ := k.MarshalText()
	back, err := ParsePrivateKey(secText, nil)
	if err != nil || !back.Key.Equal(k.Key) || back.ID != k.ID {
		t.Fatalf("secret key round trip: %v", err)
	}
}

// Files kiln signs verify with the minisign tool, and kiln verifies and
// signs with what minisign makes: its keys, encrypted or not, and its
// signatures.
func TestInteroperatesWithMinisign(t *testing.T) {
	tool := minisignTool(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "SHA256SUMS")
	content := []byte("0123abcd  disk.qcow2\n")
	os.WriteFile(file, content, 0o644)

	// kiln key and signature → minisign -V.
	k, _ := GenerateKey(nil)
	sig, err := Sign(k, bytes.NewReader(content), "timestamp:1796315944\tfile:SHA256SUMS\tproject:demo")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file+".minisig", sig, 0o644)
	out := run(t, dir, "", tool, "-Vm", file, "-P", k.Public().String())
	if !strings.Contains(out, "Signature and comment signature verified") || !strings.Contains(out, "project:demo") {
		t.Fatalf("minisign -V of kiln's signature:\n%s", out)
	}
	// ... and fails when the file changed.
	os.WriteFile(file, append(content, '\n'), 0o644)
	cmd := exec.Command(tool, "-Vm", file, "-P", k.Public().String())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("minisign verified a changed file:\n%s", out)
	}
	os.WriteFile(file, content, 0o644)

	// minisign keys (unencrypted and encrypted) → kiln signs; minisign
	// verifies. The encrypted key was made once by `minisign -G` (0.11)
	// with the password in the table: deriving its key costs 1 GiB of
	// scrypt, which is worth paying once here, not twice more in minisign.
	run(t, dir, "", tool, "-G", "-W", "-p", "plain.pub", "-s", "plain.key")
	for _, f := range []string{"enc.pub", "enc.key"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o600)
	}
	for _, tc := range []struct {
		name, pub, key, password string
	}{
		{"unencrypted", "plain.pub", "plain.key", ""},
		{"encrypted", "enc.pub", "enc.key", "kiln test password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyData, _ := os.ReadFile(filepath.Join(dir, tc.key))
			var pw func() ([]byte, error)
			if tc.password != "" {
				pw = func() ([]byte, error) { return []byte(tc.password), nil }
			}
			priv, err := ParsePrivateKey(keyData, pw)
			if err != nil {
				t.Fatal(err)
			}
			pubData, _ := os.ReadFile(filepath.Join(dir, tc.pub))
			pub, err := ParsePublicKey(string(pubData))
			if err != nil || !pub.Equal(priv.Public()) {
				t.Fatalf("public key %v does not match the secret key", err)
			}
			sig, err := Sign(priv, bytes.NewReader(content), "file:SHA256SUMS")
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(file+".minisig", sig, 0o644)
			run(t, dir, "", tool, "-Vm", file, "-p", tc.pub)

			if tc.password != "" {
				return
			}
			// minisign's own signature → kiln verifies.
			run(t, dir, "", tool, "-S", "-s", tc.key, "-m", file)
			data, _ := os.ReadFile(file + ".minisig")
			msig, err := ParseSignature(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(bytes.NewReader(content), msig); err != nil {
				t.Fatalf("kiln rejects minisign's signature: %v", err)
			}
		})
	}
	encData, _ := os.ReadFile(filepath.Join("testdata", "enc.key"))
	if _, err := ParsePrivateKey(encData, nil); !errors.Is(err, ErrPasswordNeeded) {
		t.Errorf("encrypted key without a password: %v", err)
	}
}

// encryptCheap encrypts k as minisign does, with scrypt's smallest cost,
// so that a wrong password costs milliseconds to find out.
func encryptCheap(t *testing.T, k PrivateKey, password string) []byte {
	t.Helper()
	const ops, mem = 32768, 16 << 20
	salt := bytes.Repeat([]byte{7}, 32)
	n, r, p, err := scryptParams(ops, mem)
	if err != nil {
		t.Fatal(err)
	}
	keynum := append(append(append([]byte{}, k.ID[:]...), k.Key...), checksum(algEd, k.ID, k.Key)...)
	stream, err := scrypt.Key([]byte(password), salt, n, r, p, len(keynum))
	if err != nil {
		t.Fatal(err)
	}
	subtle.XORBytes(keynum, keynum, stream)
	raw := append([]byte("EdScB2"), salt...)
	raw = binary.LittleEndian.AppendUint64(raw, ops)
	raw = binary.LittleEndian.AppendUint64(raw, mem)
	raw = append(raw, keynum...)
	return []byte("untrusted comment: test\n" + base64.StdEncoding.EncodeToString(raw) + "\n")
}

func TestPasswords(t *testing.T) {
	k, _ := GenerateKey(nil)
	enc := encryptCheap(t, k, "right")
	if _, err := ParsePrivateKey(enc, func() ([]byte, error) { return []byte("wrong"), nil }); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := ParsePrivateKey(enc, func() ([]byte, error) { return nil, nil }); !errors.Is(err, ErrPasswordNeeded) {
		t.Errorf("empty password: %v", err)
	}
	got, err := ParsePrivateKey(enc, func() ([]byte, error) { return []byte("right"), nil })
	if err != nil || !got.Key.Equal(k.Key) {
		t.Fatalf("right password: %v", err)
	}
	// A hostile cost is refused before any memory is spent on it.
	if _, _, _, err := scryptParams(1<<40, 1<<40); err == nil {
		t.Error("a 1 TiB scrypt cost was accepted")
	}
}

func TestParseErrors(t *testing.T) {
	k, _ := GenerateKey(nil)
	sec, _ := k.MarshalText()
	for _, tc := range []struct{ name, in, want string }{
		{"pub garbage", "hello", "want 56 base64 characters"},
		{"pub comment only", "untrusted comment: x", "no key after it"},
		{"sec no comment", strings.SplitN(string(sec), "\n", 2)[1], "untrusted comment"},
		{"sec short", "untrusted comment: x\nRWQ=\n", "not 158 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(tc.name, "pub") {
				_, err = ParsePublicKey(tc.in)
			} else {
				_, err = ParsePrivateKey([]byte(tc.in), nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, in, want string }{
		{"three lines", "untrusted comment: a\nb\nc\n", "3 lines"},
		{"no comment", "x\nRUQ=\ntrusted comment: x\nAA==\n", "line 1"},
		{"short sig", "untrusted comment: a\nRUQ=\ntrusted comment: x\nAA==\n", "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSignature([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzParseSignature checks that no signature file makes the parser panic
// and that what it accepts never verifies against an unrelated key.
func FuzzParseSignature(f *testing.F) {
	k, _ := GenerateKey(nil)
	sig, _ := Sign(k, strings.NewReader("x"), "c")
	f.Add(sig)
	f.Add([]byte("untrusted comment: a\n\n\n\n"))
	other, _ := GenerateKey(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSignature(data)
		if err != nil {
			return
		}
		if other.Public().Verify(strings.NewReader("x"), s) == nil {
			t.Fatal("an unrelated key verified a parsed signature")
		}
		ParsePublicKey(string(data))
		ParsePrivateKey(data, func() ([]byte, error) { return []byte("pw"), nil })
	})
}
