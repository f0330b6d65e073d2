// Package wordlist holds magic-wormhole's code words and code syntax: the
// PGP word list as wormhole/_wordlist.py uses it (word choice and tab
// completion), and the code/nameplate validation of wormhole/_code.py and
// _nameplate.py, with Python's error messages.
package wordlist
