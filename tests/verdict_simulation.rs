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
fn failures(judges: &[Judge], k: usize, draw: impl FnMut(&mut [u64])) -> Vec<u32> {
    failures_in(RUNS, judges, k, draw)
}

/// [`failures`] over `runs` runs.
fn failures_in(
    runs: u32,
    judges: &[Judge],
    k: usize,
    mut draw: impl FnMut(&mut [u64]),
) -> Vec<u32> {
    let mut counts = vec![0u64; k];
    let mut failed = vec![0; judges.len()];
    for _ in 0..runs {
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
        self.record_of(RUNS, policy, k, alarms, caught);
    }

    /// [`Worst::record`] for `runs` runs per scenario.
    fn record_of(&mut self, runs: u32, policy: Policy, k: usize, alarms: u32, caught: u32) {
        let alarm = alarms as f64 / runs as f64;
        let detection = caught as f64 / runs as f64;
        assert!(
            alarm <= MAX_FALSE_ALARM,
            "{policy} over {k} endpoints: a fair balancer failed {alarms} of {runs} runs"
        );
        assert!(
            detection >= MIN_DETECTION,
            "{policy} over {k} endpoints: a half-share endpoint was caught in only {caught} of {runs} runs"
        );
        self.totals.0 += u64::from(alarms);
        self.totals.1 += u64::from(caught);
        self.totals.2 += u64::from(runs);
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

/// random for every k in `ks`, on exactly sampled independent fair picks.
fn simulate_random(seed: u64, ks: impl Iterator<Item = usize>) -> Worst {
    let mut rng = Rng::seeded(seed);
    let mut worst = Worst::new();
    for k in ks {
        let fair = vec![1.0 / k as f64; k];
        let judge = [judge_for(Policy::Random, &fair)];
        let fair_picks = Multinomial::new(CALLS, &fair);
        let starved_picks = Multinomial::new(CALLS, &half_share(k));
        let alarms = failures(&judge, k, |c| fair_picks.sample(&mut rng, CALLS, c))[0];
        let caught = failures(&judge, k, |c| starved_picks.sample(&mut rng, CALLS, c))[0];
        worst.record(Policy::Random, k, alarms, caught);
    }
    worst
}

/// Simulated runs of `least_request` as it picks: power of two choices.
/// `CONCURRENCY` workers in a closed loop; each call goes to the endpoint
/// with fewer calls in flight of two distinct random ones (the first drawn
/// on a tie, as `pick::choose_less_loaded`) and holds it for a service time
/// drawn from an exponential distribution; the worker then sends its next
/// call. In a starved run, a call that picked endpoint 0 goes to the other
/// candidate with probability `detour`.
struct PowerOfTwo {
    in_flight: Vec<u32>,
    /// Each worker's call: when it ends and where it runs.
    calls: [(f64, usize); CONCURRENCY],
}

impl PowerOfTwo {
    fn new(k: usize) -> PowerOfTwo {
        PowerOfTwo {
            in_flight: vec![0; k],
            calls: [(0.0, 0); CONCURRENCY],
        }
    }

    fn pick(&self, rng: &mut Rng, detour: f64) -> usize {
        let k = self.in_flight.len();
        let a = rng.below(k);
        let b = (a + 1 + rng.below(k - 1)) % k;
        let (chosen, other) = if self.in_flight[b] < self.in_flight[a] {
            (b, a)
        } else {
            (a, b)
        };
        if chosen == 0 && detour > 0.0 && rng.unit() < detour {
            other
        } else {
            chosen
        }
    }

    /// One run of `CALLS` calls; `counts[i]` is what endpoint i received.
    fn run(&mut self, rng: &mut Rng, detour: f64, counts: &mut [u64]) {
        counts.fill(0);
        self.in_flight.fill(0);
        // Exponential service times with mean 1 (inverse transform).
        let service = |rng: &mut Rng| -(1.0 - rng.unit()).ln();
        for worker in 0..CONCURRENCY {
            let to = self.pick(rng, detour);
            self.in_flight[to] += 1;
            counts[to] += 1;
            self.calls[worker] = (service(rng), to);
        }
        for _ in CONCURRENCY as u64..CALLS {
            let mut next = 0;
            for worker in 1..CONCURRENCY {
                if self.calls[worker].0 < self.calls[next].0 {
                    next = worker;
                }
            }
            let (now, from) = self.calls[next];
            self.in_flight[from] -= 1;
            let to = self.pick(rng, detour);
            self.in_flight[to] += 1;
            counts[to] += 1;
            self.calls[next] = (now + service(rng), to);
        }
    }

    /// Endpoint 0's mean share of `runs` runs.
    fn mean_share(&mut self, rng: &mut Rng, detour: f64, runs: u32) -> f64 {
        let mut counts = vec![0; self.in_flight.len()];
        let mut sum = 0;
        for _ in 0..runs {
            self.run(rng, detour, &mut counts);
            sum += counts[0];
        }
        sum as f64 / (runs as f64 * CALLS as f64)
    }

    /// The detour probability that gives endpoint 0 half its fair share
    /// (bisection on pilot runs; power of two choices feeds an endpoint that
    /// lost calls back, so it takes more than a 50% detour).
    fn half_share_detour(&mut self, rng: &mut Rng) -> f64 {
        let target = 0.5 / self.in_flight.len() as f64;
        let (mut low, mut high) = (0.0, 1.0);
        for _ in 0..12 {
            let mid = (low + high) / 2.0;
            if self.mean_share(rng, mid, 4) > target {
                low = mid;
            } else {
                high = mid;
            }
        }
        (low + high) / 2.0
    }
}

/// Runs per scenario for power of two choices, which is simulated call by
/// call (the independent picks are drawn per run, exactly and cheaply).
const P2C_RUNS: u32 = 1_000;

/// Endpoint counts simulated for power of two choices.
const P2C_KS: [usize; 10] = [2, 3, 4, 5, 7, 10, 15, 20, 30, 50];

/// least_request for the given k; also returns the starved endpoint's mean
/// share of its fair share over the starved runs, per k.
fn simulate_power_of_two(seed: u64, ks: &[usize]) -> (Worst, Vec<(usize, f64)>) {
    let mut rng = Rng::seeded(seed);
    let mut worst = Worst::new();
    let mut starved_shares = Vec::new();
    for &k in ks {
        let fair = vec![1.0 / k as f64; k];
        let judge = [judge_for(Policy::LeastRequest, &fair)];
        let mut sim = PowerOfTwo::new(k);
        let detour = sim.half_share_detour(&mut rng);
        let alarms = failures_in(P2C_RUNS, &judge, k, |c| sim.run(&mut rng, 0.0, c))[0];
        let mut starved_total = 0;
        let caught = failures_in(P2C_RUNS, &judge, k, |c| {
            sim.run(&mut rng, detour, c);
            starved_total += c[0];
        })[0];
        let of_fair = starved_total as f64 / (P2C_RUNS as f64 * CALLS as f64) * k as f64;
        starved_shares.push((k, of_fair));
        worst.record_of(P2C_RUNS, Policy::LeastRequest, k, alarms, caught);
    }
    (worst, starved_shares)
}

fn print_row(policy: Policy, worst: &Worst, runs: &str) {
    let (alarms, caught, total) = worst.totals;
    println!(
        "  {:<14} false alarms {alarms}/{total} ({:.4}%), worst {:.2}% (k={}); \
         half-share endpoint caught {caught}/{total} ({:.4}%), worst {:.2}% (k={}); {runs}",
        policy.name(),
        alarms as f64 / total as f64 * 100.0,
        worst.alarm.0 * 100.0,
        worst.alarm.1,
        caught as f64 / total as f64 * 100.0,
        worst.detection.0 * 100.0,
        worst.detection.1
    );
}

#[test]
fn default_verdict_rarely_fails_a_fair_balancer_and_catches_a_starved_endpoint() {
    // Five threads (the machine has two cores; the work splits unevenly):
    // round_robin, random over even and odd k, power of two choices over two
    // halves of its k.
    let (round_robin, random, least_request, starved) = std::thread::scope(|scope| {
        let rr = scope.spawn(|| simulate_round_robin(0x5EED));
        let even = scope.spawn(|| simulate_random(0x5EED + 1, (2..=50).step_by(2)));
        let odd = scope.spawn(|| simulate_random(0x5EED + 2, (3..=50).step_by(2)));
        let (few, many) = P2C_KS.split_at(P2C_KS.len() / 2);
        let p2c_few = scope.spawn(|| simulate_power_of_two(0x5EED + 3, few));
        let p2c_many = simulate_power_of_two(0x5EED + 4, many);
        let random = even.join().unwrap().merge(&odd.join().unwrap());
        let p2c_few = p2c_few.join().unwrap();
        let mut starved = p2c_few.1;
        starved.extend(p2c_many.1);
        (
            rr.join().unwrap(),
            random,
            p2c_few.0.merge(&p2c_many.0),
            starved,
        )
    });
    println!(
        "default verdict (--assert-even), {CALLS} calls over k endpoints, concurrency {CONCURRENCY}:"
    );
    print_row(
        Policy::RoundRobin,
        &round_robin,
        &format!("k = 2..50, {RUNS} runs per k and scenario"),
    );
    print_row(
        Policy::Random,
        &random,
        &format!("k = 2..50, {RUNS} runs per k and scenario, independent picks drawn exactly"),
    );
    print_row(
        Policy::LeastRequest,
        &least_request,
        &format!(
            "k = {P2C_KS:?}, {P2C_RUNS} runs per k and scenario, power of two choices call by call, exponential service times"
        ),
    );
    let shares: Vec<String> = starved
        .iter()
        .map(|(k, s)| format!("k={k}: {:.0}%", s * 100.0))
        .collect();
    println!(
        "  least_request's starved endpoint got, of its fair share: {}",
        shares.join(", ")
    );
    for (k, share) in starved {
        assert!(
            (0.4..=0.6).contains(&share),
            "the starved endpoint over {k} got {share:.2} of its fair share, not about half"
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
