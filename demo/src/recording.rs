//! Call recordings for the simulated PBX: a short WAV file per call, made on
//! the fly so the widget's player has something real to play and seek.

/// Sample rate of the generated recordings (telephone quality).
const SAMPLE_RATE: u32 = 8_000;

/// A mono 16-bit PCM WAV of `seconds` seconds: two alternating tones, like a
/// conversation, with soft edges so the player does not click.
pub fn wav(seconds: u32) -> Vec<u8> {
    let samples = SAMPLE_RATE * seconds.max(1);
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = i as f32 / SAMPLE_RATE as f32;
        // Each half-second "phrase" alternates speaker pitch; each phrase fades in and out.
        let phrase = (t * 2.0) as u32;
        let within = t * 2.0 - phrase as f32;
        let pitch = if phrase.is_multiple_of(2) { 220.0 } else { 330.0 };
        let envelope = (within * std::f32::consts::PI).sin();
        let value = (t * pitch * std::f32::consts::TAU).sin() * envelope * 0.3;
        out.extend_from_slice(&((value * i16::MAX as f32) as i16).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wav_header_describes_its_data() {
        let w = wav(3);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(&w[8..16], b"WAVEfmt ");
        let data_len = u32::from_le_bytes(w[40..44].try_into().unwrap());
        assert_eq!(data_len, 3 * SAMPLE_RATE * 2);
        assert_eq!(w.len(), 44 + data_len as usize);
        assert!(w[44..].iter().any(|&b| b != 0), "the recording is not silence");
    }
}
