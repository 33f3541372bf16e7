//! The fuzz input read front to back as the values a target needs; past its end every value is
//! 0 (so a short input is still a whole, if dull, run).
#![allow(dead_code)] // each target uses part of it

pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    /// True once in `n` (for n a power of two up to 256, exactly).
    pub fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    /// An element of `v`, or None when it is empty or the input asks for none (1 in 16).
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        let i = usize::from(self.u8());
        (i < 0xf0 && !v.is_empty()).then(|| v[i % v.len()])
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
