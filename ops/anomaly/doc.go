// Package anomaly keeps streaming baselines per provider and reports when a
// provider's stream leaves them: volume (accepted transactions per window),
// amounts (each accepted transaction), rollback ratio and reject ratio (per
// window).
//
// The Detector is pure: no clock, no NATS, no goroutines. The caller feeds
// it observations with their time and calls Tick with the time now; tests
// drive it with a simulated clock. The node runs it behind a bounded queue
// (nodes/ops.go) so that it never slows or blocks ingest or settlement.
//
// Statistics, per provider and series:
//
//   - Window series (volume, rollback_ratio, reject_ratio): the baseline is
//     the median of the last History window values and the spread is
//     1.4826·MAD (the normal-consistent median absolute deviation), with a
//     floor (sqrt(median) for volume, as for a Poisson count; MinRatioSpread
//     for ratios) so a perfectly steady stream does not make every small
//     change look infinite. A window is judged once Warmup windows are in
//     the baseline: score = (value − median) / spread. Volume fires on
//     |score| > Sensitivity (spike or drop) and on a drop to zero from a
//     median of at least MinVolume; ratios fire upward only (a rollback or
//     reject storm), and only in windows with at least MinVolume
//     transactions. A value joins the baseline clamped to median ±
//     Sensitivity·spread, so one storm does not become the new normal at
//     once but a lasting change of level does, within about History/2
//     windows.
//   - Amounts: the baseline is an EWMA of log10(amount) and the spread an
//     EWMA of its absolute deviation (×1.2533 to estimate σ), both started
//     from the median and MAD of the first AmountWarmup amounts. An amount
//     fires when its score exceeds Sensitivity upward (large amounts; small
//     ones are normal for casino traffic). Zero and negative amounts are
//     not judged.
//
// Not done: per game or category baselines, GGR, seasonal time-of-day
// profiles (a strong daily cycle needs a lower Sensitivity or a longer
// History).
package anomaly
