//! Learning-rate schedules. Their whole state is serialisable, so `--resume` continues
//! exactly where a run stopped.

use serde::{Deserialize, Serialize};

use crate::config::ScheduleKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub peak: f64,
    pub total_steps: usize,
    pub warmup_steps: usize,
    /// Plateau schedule state: current rate, best validation loss, epochs since it improved.
    pub plateau_lr: f64,
    pub best_loss: f64,
    pub bad_epochs: usize,
    pub patience: usize,
}

impl Schedule {
    pub fn new(
        kind: ScheduleKind,
        peak: f64,
        total_steps: usize,
        warmup_steps: usize,
        patience: usize,
    ) -> Self {
        Schedule {
            kind,
            peak,
            total_steps: total_steps.max(1),
            warmup_steps,
            plateau_lr: peak,
            best_loss: f64::MAX, // not INFINITY: JSON cannot hold it
            bad_epochs: 0,
            patience,
        }
    }

    /// The rate for optimiser step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        let cosine = |from: f64, to: f64, t: f64| {
            to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos())
        };
        match self.kind {
            ScheduleKind::Cosine => {
                if step < self.warmup_steps {
                    self.peak * (step + 1) as f64 / self.warmup_steps as f64
                } else {
                    let span = (self.total_steps - self.warmup_steps).max(1);
                    cosine(
                        self.peak,
                        0.0,
                        (step - self.warmup_steps) as f64 / span as f64,
                    )
                }
            }
            ScheduleKind::OneCycle => {
                let up = ((self.total_steps as f64) * 0.3).max(1.0);
                let start = self.peak / 25.0;
                let end = self.peak / 1e4;
                let s = step as f64;
                if s < up {
                    cosine(start, self.peak, s / up)
                } else {
                    cosine(
                        self.peak,
                        end,
                        (s - up) / (self.total_steps as f64 - up).max(1.0),
                    )
                }
            }
            ScheduleKind::Plateau | ScheduleKind::Constant => {
                // A constant schedule is a plateau that never cuts (see `end_epoch`).
                if step < self.warmup_steps {
                    self.plateau_lr * (step + 1) as f64 / self.warmup_steps as f64
                } else {
                    self.plateau_lr
                }
            }
        }
    }

    /// Tells the schedule an epoch's validation loss (only the plateau schedule listens).
    pub fn end_epoch(&mut self, val_loss: f64) {
        if self.kind != ScheduleKind::Plateau {
            return;
        }
        if val_loss < self.best_loss - 1e-4 {
            self.best_loss = val_loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
            if self.bad_epochs > self.patience {
                self.plateau_lr /= 10.0;
                self.bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_zero() {
        let s = Schedule::new(ScheduleKind::Cosine, 0.1, 100, 10, 0);
        assert!((s.lr(0) - 0.01).abs() < 1e-12);
        assert!((s.lr(9) - 0.1).abs() < 1e-12);
        assert!(s.lr(50) < 0.1 && s.lr(50) > s.lr(90));
        assert!(s.lr(100) < 1e-9);
    }

    #[test]
    fn one_cycle_peaks_at_thirty_percent() {
        let s = Schedule::new(ScheduleKind::OneCycle, 1.0, 1000, 0, 0);
        assert!((s.lr(0) - 0.04).abs() < 1e-9);
        assert!((s.lr(300) - 1.0).abs() < 1e-9);
        assert!(s.lr(999) < 1e-3);
    }

    #[test]
    fn plateau_cuts_after_patience() {
        let mut s = Schedule::new(ScheduleKind::Plateau, 0.1, 100, 0, 2);
        for loss in [1.0, 0.9, 0.95, 0.95, 0.95] {
            s.end_epoch(loss);
        }
        assert!((s.lr(50) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn constant_warms_up_then_holds_the_peak_whatever_the_loss() {
        let mut s = Schedule::new(ScheduleKind::Constant, 0.1, 100, 10, 2);
        assert!((s.lr(0) - 0.01).abs() < 1e-12);
        for loss in [1.0, 2.0, 3.0, 4.0, 5.0] {
            s.end_epoch(loss);
        }
        assert_eq!((s.lr(10), s.lr(99)), (0.1, 0.1));
    }
}
