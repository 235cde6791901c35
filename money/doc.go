// Package money owns currencies, rounding and allocation: everything that turns
// one exact decimal amount into parts without creating or losing a minor unit.
//
// Invariants:
//   - amounts are shopspring/decimal values, never floats;
//   - a currency is known by its ISO 4217 code and exponent; an unknown code is
//     an error, never defaulted to two decimals;
//   - every allocation returns parts that sum exactly to the amount, or an error.
//
// Speed without changing a result: Allocate, SumEquals, String, AppendString
// and Currency.Format work on int64 coefficients (uint64 minor units with
// 128-bit products for Allocate) when every figure fits, and fall back to
// shopspring/math/big otherwise; differential tests and fuzz targets hold
// each fast path to the decimal code's exact output.
package money
