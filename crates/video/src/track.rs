//! Following faces from frame to frame: each face of a frame joins the track whose last box
//! it overlaps most (IoU), or, when boxes moved more than that, whose landmarks are nearest
//! relative to the face's size; a track unseen for more than `max_missed` sampled frames
//! ends; a face that joins no track starts a new one, with the next id.

use ferrite_infer::detect::{FaceBox, iou};

/// Boxes overlapping at least this much are the same face from one frame to the next.
const MIN_IOU: f32 = 0.3;
/// Otherwise, landmarks closer than this many face widths (mean over the five) are.
const MAX_LANDMARK_SHIFT: f32 = 0.5;

struct Track {
    id: u64,
    last: FaceBox,
    missed: u32,
}

pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    max_missed: u32,
}

impl Tracker {
    /// `max_missed`: sampled frames a face may go undetected and keep its track.
    pub fn new(max_missed: u32) -> Tracker {
        Tracker {
            tracks: Vec::new(),
            next_id: 1,
            max_missed,
        }
    }

    /// The track id of each face of the next sampled frame, in the faces' order.
    pub fn update(&mut self, faces: &[FaceBox]) -> Vec<u64> {
        // Every (track, face) pair that may match, best first; taken greedily, one to one.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (f, face) in faces.iter().enumerate() {
                if let Some(cost) = distance(&track.last, face) {
                    pairs.push((cost, t, f));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ids: Vec<Option<u64>> = vec![None; faces.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, t, f) in pairs {
            if taken[t] || ids[f].is_some() {
                continue;
            }
            taken[t] = true;
            ids[f] = Some(self.tracks[t].id);
            self.tracks[t].last = faces[f];
            self.tracks[t].missed = 0;
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !taken[t] {
                track.missed += 1;
            }
        }
        let max_missed = self.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        ids.into_iter()
            .zip(faces)
            .map(|(id, face)| {
                id.unwrap_or_else(|| {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        last: *face,
                        missed: 0,
                    });
                    id
                })
            })
            .collect()
    }
}

/// How far `b` is from `a` (lower is nearer), or `None` when they cannot be the same face.
/// Overlapping boxes rank before landmark matches.
fn distance(a: &FaceBox, b: &FaceBox) -> Option<f32> {
    let overlap = iou(
        &[a.x, a.y, a.width, a.height],
        &[b.x, b.y, b.width, b.height],
    );
    if overlap >= MIN_IOU {
        return Some(1.0 - overlap);
    }
    let size = a.width.max(b.width).max(1.0);
    let shift = a
        .landmarks
        .iter()
        .zip(&b.landmarks)
        .map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1]))
        .sum::<f32>()
        / 5.0
        / size;
    (shift < MAX_LANDMARK_SHIFT).then_some(1.0 + shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32) -> FaceBox {
        let l = |dx: f32, dy: f32| [x + dx, y + dy];
        FaceBox {
            x,
            y,
            width: 40.0,
            height: 50.0,
            score: 0.9,
            landmarks: [
                l(12.0, 18.0),
                l(28.0, 18.0),
                l(20.0, 27.0),
                l(14.0, 36.0),
                l(26.0, 36.0),
            ],
        }
    }

    #[test]
    fn two_faces_moving_past_each_other_keep_their_ids() {
        let mut t = Tracker::new(2);
        assert_eq!(t.update(&[face(0.0, 0.0), face(200.0, 0.0)]), vec![1, 2]);
        // Both move 10 px towards each other; listed in the other order.
        assert_eq!(t.update(&[face(190.0, 0.0), face(10.0, 0.0)]), vec![2, 1]);
    }

    #[test]
    fn a_face_missing_briefly_keeps_its_id_and_a_new_one_gets_the_next() {
        let mut t = Tracker::new(2);
        assert_eq!(t.update(&[face(0.0, 0.0)]), vec![1]);
        assert_eq!(t.update(&[]), Vec::<u64>::new());
        assert_eq!(t.update(&[face(4.0, 2.0), face(300.0, 0.0)]), vec![1, 2]);
        // Gone for longer than allowed: a face there later is someone new.
        for _ in 0..3 {
            t.update(&[face(300.0, 0.0)]);
        }
        assert_eq!(t.update(&[face(0.0, 0.0), face(300.0, 0.0)]), vec![3, 2]);
    }

    #[test]
    fn a_fast_move_is_followed_by_landmarks() {
        let mut t = Tracker::new(2);
        t.update(&[face(0.0, 0.0)]);
        // 30 px right: IoU about 0.14, landmarks 0.75 face widths away: a new face.
        assert_eq!(t.update(&[face(30.0, 0.0)]), vec![2]);
        // 15 px from there: IoU 0.45: the same.
        assert_eq!(t.update(&[face(45.0, 0.0)]), vec![2]);
    }
}
