// Package money owns currencies, rounding and allocation: everything that turns
// one exact decimal amount into parts without creating or losing a minor unit.
//
// Invariants:
//   - amounts are shopspring/decimal values, never floats;
//   - a currency is known by its ISO 4217 code and exponent; an unknown code is
//     an error, never defaulted to two decimals;
//   - every allocation returns parts that sum exactly to the amount, or an error.
package money
