// Package minisign reads and writes minisign keys and signatures: Ed25519
// signatures over the BLAKE2b-512 hash of a file, with a trusted comment
// the signature also covers. Files kiln signs verify with the minisign
// tool from the user's distribution (`minisign -Vm FILE -P KEY`), and
// secret keys made by `minisign -G` sign in kiln, encrypted or not.
//
// Only the prehashed algorithm ("ED"), minisign's default since 0.8, is
// made and accepted; legacy signatures ("Ed") are refused, as minisign
// refuses them without -l.
package minisign
