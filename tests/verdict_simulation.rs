//! The default verdict (`--assert-even`) against simulated runs: a fair
//! balancer must almost never fail it, and an endpoint that gets half its
//! fair share must almost always be caught. Seeded, no network.
//!
//! Run with `--nocapture` to see the measured rates.

use grpclb::pick::Policy;
use grpclb::verdict::{Assertions, Balancing, Judge};

/// `grpclb bench`'s default call count.
const CALLS: u64 = 10_000;
/// `grpclb bench`'s default concurrency.
const CONCURRENCY: usize = 8;
/// Simulated runs per policy, endpoint count and scenario.
const RUNS: u32 = 10_000;
/// At most this fraction of fair runs may fail the default verdict.
const MAX_FALSE_ALARM: f64 = 0.001;
/// At least this fraction of runs with a half-share endpoint must fail it.
const MIN_DETECTION: f64 = 0.999;

/// What `--assert-even` asks.
fn default_verdict() -> Assertions {
    Assertions {
        spread: true,
        all_endpoints_hit: true,
        ..Assertions::default()
    }
}

/// xoshiro256++ seeded through splitmix64: cheap and good enough.
struct Rng([u64; 4]);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// One step of the conditional-binomial chain that samples a multinomial.
#[derive(Clone, Copy)]
struct Step {
    p: f64,
    ln_p: f64,
    ln_q: f64,
}

/// Exact multinomial sampling of `n` independent picks: endpoint i gets
/// Binomial(calls left, p_i / mass left), each binomial drawn by inversion
/// walking out from the mode (ln-factorials tabulated once).
struct Multinomial {
    ln_fact: Vec<f64>,
    steps: Vec<Step>,
}

impl Multinomial {
    fn new(n: u64, shares: &[f64]) -> Multinomial {
        let mut ln_fact = vec![0.0; n as usize + 1];
        for i in 1..=n as usize {
            ln_fact[i] = ln_fact[i - 1] + (i as f64).ln();
        }
        let mut left = 1.0;
        let steps = shares
            .iter()
            .map(|share| {
                let p = (share / left).clamp(0.0, 1.0);
                left -= share;
                Step {
                    p,
                    ln_p: p.ln(),
                    ln_q: (1.0 - p).ln(),
                }
            })
            .collect();
        Multinomial { ln_fact, steps }
    }

    fn sample(&self, rng: &mut Rng, n: u64, counts: &mut [u64]) {
        let mut left = n;
        let last = counts.len() - 1;
        for (i, step) in self.steps.iter().enumerate() {
            let drawn = if i == last {
                left
            } else {
                self.binomial(rng, left, *step)
            };
            counts[i] = drawn;
            left -= drawn;
        }
    }

    fn binomial(&self, rng: &mut Rng, n: u64, step: Step) -> u64 {
        if n == 0 || step.p <= 0.0 {
            return 0;
        }
        if step.p >= 1.0 {
            return n;
        }
        let (p, q) = (step.p, 1.0 - step.p);
        let mode = (((n + 1) as f64 * p).floor() as u64).min(n);
        let f = &self.ln_fact;
        let at_mode = (f[n as usize] - f[mode as usize] - f[(n - mode) as usize]
            + mode as f64 * step.ln_p
            + (n - mode) as f64 * step.ln_q)
            .exp();
        let mut u = rng.unit() - at_mode;
        if u <= 0.0 {
            return mode;
        }
        let (up_ratio, down_ratio) = (p / q, q / p);
        let total = n as f64;
        let (mut up, mut down) = (mode as f64, mode as f64);
        let (mut p_up, mut p_down) = (at_mode, at_mode);
        loop {
            let mut moved = false;
            if up < total {
                p_up *= (total - up) / (up + 1.0) * up_ratio;
                up += 1.0;
                u -= p_up;
                if u <= 0.0 {
                    return up as u64;
                }
                moved = true;
            }
            if down > 0.0 {
                p_down *= down / (total - down + 1.0) * down_ratio;
                down -= 1.0;
                u -= p_down;
                if u <= 0.0 {
                    return down as u64;
                }
                moved = true;
            }
            if !moved {
                return mode;
            }
        }
    }
}

/// A fair round_robin run: everyone gets calls/k (the remainder from a
/// random start), then the calls in flight at the window's edges move up
/// to `CONCURRENCY` calls between random endpoints.
fn round_robin_run(rng: &mut Rng, shares: &[f64], counts: &mut [u64]) {
    let k = counts.len();
    let mut given = 0;
    for (c, p) in counts.iter_mut().zip(shares) {
        *c = (CALLS as f64 * p).floor() as u64;
        given += *c;
    }
    let start = rng.below(k);
    for i in 0..(CALLS - given) as usize {
        counts[(start + i) % k] += 1;
    }
    for _ in 0..CONCURRENCY {
        let from = rng.below(k);
        if counts[from] > 0 {
            counts[from] -= 1;
            counts[rng.below(k)] += 1;
        }
    }
}

/// Shares where endpoint 0 gets half its fair share and the rest is spread
/// evenly over the others.
fn half_share(k: usize) -> Vec<f64> {
    let starved = 0.5 / k as f64;
    let mut shares = vec![(1.0 - starved) / (k - 1) as f64; k];
    shares[0] = starved;
    shares
}

/// Failures of the default verdict, per judge, over `RUNS` runs drawn by
/// `draw` (every judge sees the same runs).
fn failures(judges: &[Judge], k: usize, mut draw: impl FnMut(&mut [u64])) -> Vec<u32> {
    let mut counts = vec![0u64; k];
    let mut failed = vec![0; judges.len()];
    for _ in 0..RUNS {
        draw(&mut counts);
        for (judge, failed) in judges.iter().zip(&mut failed) {
            if !judge.holds(&counts) {
                *failed += 1;
            }
        }
    }
    failed
}

/// The worst rates of one policy over every k, and the k they happened at.
#[derive(Debug, Clone, Copy)]
struct Worst {
    alarm: (f64, usize),
    detection: (f64, usize),
    /// False alarms, detections and runs per scenario, over every k.
    totals: (u64, u64, u64),
}

impl Worst {
    /// The worse of both, with totals summed.
    fn merge(&self, other: &Worst) -> Worst {
        let higher = |a: (f64, usize), b: (f64, usize)| if b.0 > a.0 { b } else { a };
        let lower = |a: (f64, usize), b: (f64, usize)| if b.0 < a.0 { b } else { a };
        Worst {
            alarm: higher(self.alarm, other.alarm),
            detection: lower(self.detection, other.detection),
            totals: (
                self.totals.0 + other.totals.0,
                self.totals.1 + other.totals.1,
                self.totals.2 + other.totals.2,
            ),
        }
    }

    fn new() -> Worst {
        Worst {
            alarm: (0.0, 0),
            detection: (1.0, 0),
            totals: (0, 0, 0),
        }
    }

    /// Records one k's counts after checking them against the promise.
    fn record(&mut self, policy: Policy, k: usize, alarms: u32, caught: u32) {
        let alarm = alarms as f64 / RUNS as f64;
        let detection = caught as f64 / RUNS as f64;
        assert!(
            alarm <= MAX_FALSE_ALARM,
            "{policy} over {k} endpoints: a fair balancer failed {alarms} of {RUNS} runs"
        );
        assert!(
            detection >= MIN_DETECTION,
            "{policy} over {k} endpoints: a half-share endpoint was caught in only {caught} of {RUNS} runs"
        );
        self.totals.0 += u64::from(alarms);
        self.totals.1 += u64::from(caught);
        self.totals.2 += u64::from(RUNS);
        if alarm >= self.alarm.0 {
            self.alarm = (alarm, k);
        }
        if detection <= self.detection.0 {
            self.detection = (detection, k);
        }
    }
}

fn judge_for(policy: Policy, shares: &[f64]) -> Judge {
    let balancing = Balancing::PerCall {
        policy,
        concurrency: CONCURRENCY,
    };
    Judge::new(&default_verdict(), balancing, shares, CALLS)
}

/// round_robin for every k from 2 to 50.
fn simulate_round_robin(seed: u64) -> Worst {
    let mut rng = Rng::seeded(seed);
    let mut worst = Worst::new();
    for k in 2..=50usize {
        let fair = vec![1.0 / k as f64; k];
        let starved = half_share(k);
        let judge = [judge_for(Policy::RoundRobin, &fair)];
        let alarms = failures(&judge, k, |c| round_robin_run(&mut rng, &fair, c))[0];
        let caught = failures(&judge, k, |c| round_robin_run(&mut rng, &starved, c))[0];
        worst.record(Policy::RoundRobin, k, alarms, caught);
    }
    worst
}

/// Policies judged by the binomial model, for every k from 2 to 50, all
/// against the same simulated runs of independent fair picks.
fn simulate_independent_picks(
    policies: &[Policy],
    seed: u64,
    ks: impl Iterator<Item = usize>,
) -> Vec<Worst> {
    let mut rng = Rng::seeded(seed);
    let mut worst = vec![Worst::new(); policies.len()];
    for k in ks {
        let fair = vec![1.0 / k as f64; k];
        let starved = half_share(k);
        let judges: Vec<Judge> = policies.iter().map(|p| judge_for(*p, &fair)).collect();
        let fair_picks = Multinomial::new(CALLS, &fair);
        let starved_picks = Multinomial::new(CALLS, &starved);
        let alarms = failures(&judges, k, |c| fair_picks.sample(&mut rng, CALLS, c));
        let caught = failures(&judges, k, |c| starved_picks.sample(&mut rng, CALLS, c));
        for (i, policy) in policies.iter().enumerate() {
            worst[i].record(*policy, k, alarms[i], caught[i]);
        }
    }
    worst
}

#[test]
fn default_verdict_rarely_fails_a_fair_balancer_and_catches_a_starved_endpoint() {
    let binomial = [Policy::Random, Policy::LeastRequest, Policy::PickFirst];
    // Three threads: round_robin, and the binomial policies over even and
    // odd k (the larger k cost the most).
    let (round_robin, others) = std::thread::scope(|scope| {
        let rr = scope.spawn(|| simulate_round_robin(0x5EED));
        let even =
            scope.spawn(|| simulate_independent_picks(&binomial, 0x5EED + 1, (2..=50).step_by(2)));
        let odd = simulate_independent_picks(&binomial, 0x5EED + 2, (3..=50).step_by(2));
        let even = even.join().unwrap();
        let merged: Vec<Worst> = even.iter().zip(&odd).map(|(a, b)| a.merge(b)).collect();
        (rr.join().unwrap(), merged)
    });
    println!(
        "default verdict (--assert-even), {CALLS} calls, k = 2..50, {RUNS} runs per k and scenario; \
         random, least_request and pick_first are judged on the same simulated runs of independent fair picks:"
    );
    let all =
        std::iter::once((Policy::RoundRobin, round_robin)).chain(binomial.into_iter().zip(others));
    for (policy, w) in all {
        let (alarms, caught, runs) = w.totals;
        println!(
            "  {:<14} false alarms {alarms}/{runs} ({:.4}%), worst {:.2}% (k={}); \
             half-share endpoint caught {caught}/{runs} ({:.4}%), worst {:.2}% (k={})",
            policy.name(),
            alarms as f64 / runs as f64 * 100.0,
            w.alarm.0 * 100.0,
            w.alarm.1,
            caught as f64 / runs as f64 * 100.0,
            w.detection.0 * 100.0,
            w.detection.1
        );
    }
}

#[test]
fn clusterip_is_judged_per_connection() {
    // 2,000 connections each carrying 5 calls: a pod is picked per connection.
    let connections = 2_000usize;
    let per_connection = CALLS / connections as u64;
    let balancing = Balancing::PerConnection {
        connections,
        concurrency: CONCURRENCY,
    };
    let mut rng = Rng::seeded(0xC1_u64);
    let mut worst = (0.0f64, 1.0f64);
    for k in 2..=10usize {
        let fair = vec![1.0 / k as f64; k];
        let judge = [Judge::new(&default_verdict(), balancing, &fair, CALLS)];
        let fair_picks = Multinomial::new(connections as u64, &fair);
        let starved_picks = Multinomial::new(connections as u64, &half_share(k));
        let scaled = |picks: &Multinomial, rng: &mut Rng, c: &mut [u64]| {
            picks.sample(rng, connections as u64, c);
            c.iter_mut().for_each(|n| *n *= per_connection);
        };
        let alarms = failures(&judge, k, |c| scaled(&fair_picks, &mut rng, c))[0];
        let caught = failures(&judge, k, |c| scaled(&starved_picks, &mut rng, c))[0];
        let (alarm, detection) = (alarms as f64 / RUNS as f64, caught as f64 / RUNS as f64);
        assert!(alarm <= MAX_FALSE_ALARM, "k={k}: {alarms} false alarms");
        assert!(detection >= MIN_DETECTION, "k={k}: caught only {caught}");
        worst = (worst.0.max(alarm), worst.1.min(detection));
    }
    println!(
        "clusterip, {connections} connections × {per_connection} calls, k = 2..10: worst false alarm {:.3}%, worst detection {:.3}%",
        worst.0 * 100.0,
        worst.1 * 100.0
    );
}

#[test]
fn one_connection_is_too_few_to_judge_and_says_how_many_are_needed() {
    let balancing = Balancing::PerConnection {
        connections: 1,
        concurrency: CONCURRENCY,
    };
    let judge = Judge::new(&default_verdict(), balancing, &[0.2; 5], CALLS);
    let names: Vec<String> = (1..=5).map(|i| format!("pod-{i}")).collect();
    let counts = [CALLS, 0, 0, 0, 0];
    let (findings, too_few) = judge.findings(&names, &counts, &counts);
    let too_few = too_few.expect("one connection cannot be judged");
    assert_eq!((too_few.unit.as_str(), too_few.have), ("connections", 1));
    assert!(too_few.needed.is_some_and(|n| n > 100));
    assert!(findings.iter().any(|f| f.message.contains("--connections")));
    assert!(!judge.holds(&[2000; 5]));
}

#[test]
fn the_sampler_draws_the_exact_binomial() {
    use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, Discrete};
    let mut rng = Rng::seeded(0xB1);
    for (n, p) in [(200u64, 0.1), (CALLS, 0.02), (CALLS, 0.5)] {
        let sampler = Multinomial::new(n, &[p, 1.0 - p]);
        let draws = 200_000u32;
        let mut seen = vec![0u32; n as usize + 1];
        let mut counts = [0u64; 2];
        for _ in 0..draws {
            sampler.sample(&mut rng, n, &mut counts);
            seen[counts[0] as usize] += 1;
        }
        // Chi-square over bins pooled until each expects at least 20 draws.
        let exact = Binomial::new(p, n).unwrap();
        let (mut chi2, mut bins) = (0.0, 0usize);
        let (mut observed, mut expected) = (0.0, 0.0);
        for (x, count) in seen.iter().enumerate() {
            observed += f64::from(*count);
            expected += exact.pmf(x as u64) * f64::from(draws);
            if expected >= 20.0 {
                chi2 += (observed - expected).powi(2) / expected;
                bins += 1;
                (observed, expected) = (0.0, 0.0);
            }
        }
        let p_value = ChiSquared::new((bins - 1) as f64).unwrap().sf(chi2);
        assert!(
            p_value > 1e-4,
            "Binomial({n}, {p}) sampler is off: chi² {chi2:.1} over {bins} bins, p = {p_value:.2e}"
        );
    }
}
