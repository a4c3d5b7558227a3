package manifest

// Write stores m in the layout's format at path, atomically, as the
// package-level Write does for kiln's format. Nothing is written when m
// cannot be expressed in the format.
func (l *Layout) Write(path string, m Manifest) error {
	data, err := l.Encode(m)
	if err != nil {
		return err
	}
	return writeAtomic(path, data, nil)
}

// LoadAny reads the manifest at path and checks it against r in whichever
// of layouts fits it (see CheckAny), returning the layout that did. A
// missing file is an error matching fs.ErrNotExist.
func LoadAny(path string, r Rules, layouts ...*Layout) (Manifest, *Layout, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, nil, err
	}
	return CheckAny(path, data, r, layouts...)
}
