// Package repocheck holds tests of the repository itself rather than of a package:
// that the documentation's relative links resolve, and that no service package or test
// helper links the benchmark commands. It has no code of its own.
package repocheck
