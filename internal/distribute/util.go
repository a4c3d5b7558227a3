package distribute

import "crypto/rand"

func randRead(b []byte) { rand.Read(b) } // never fails on Linux
