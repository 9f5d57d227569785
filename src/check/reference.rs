//! The content reference: what each load returns by the semantics of
//! files, zero-fill, private copies, shared memory, the shared buffer and
//! DMA — kept from the operations alone, never from the engine or the
//! memory system.
//!
//! ```text
//!   process p, page va ──► Binding ──► a page of words
//!       PrivateZero           (zeroes, until the first store)
//!       Private(id)           pages[id]        its own copy
//!       File(f, n)            files[f][n]      the page cache
//!       PrivateFile(f, n)     files[f][n]      until the first store copies it
//!       SharedAnon(o, n)      shared[o][n]
//! ```
//! The shared buffer and the kernel's DMA area are words of their own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::vec::Vec;

use crate::mm::space::Protection;

use super::machine::PAGE;

const WORDS: usize = (PAGE / 4) as usize;

/// What a user page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Private anonymous, never written: zeroes.
    PrivateZero,
    /// A private page of its own (anonymous written, or a private file
    /// page after its first store).
    Private(u64),
    /// File `f`'s page `n`, shared.
    File(usize, u32),
    /// File `f`'s page `n` in a private mapping, not yet written.
    PrivateFile(usize, u32),
    /// Page `n` of shared anonymous object `o`.
    SharedAnon(u64, u32),
}

impl Binding {
    /// True if only this process's mapping shows the page (its frame dies
    /// with the mapping unless another process still maps it).
    pub fn is_private(self) -> bool {
        matches!(self, Binding::PrivateZero | Binding::Private(_))
    }
}

/// One process's view: its pages and its break.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// Page address → binding.
    pub pages: BTreeMap<u32, Binding>,
    /// Page address → protection (the model's CPU does not tell user
    /// from kernel accesses, so `PROT_NONE` is the world's to enforce).
    pub prot: BTreeMap<u32, Protection>,
    /// The break (as `brk` set it).
    pub brk: u32,
}

/// The reference.
#[derive(Debug)]
pub struct Reference {
    /// One per live process, in the world's order.
    pub procs: Vec<Process>,
    private: HashMap<u64, Vec<u32>>,
    files: Vec<Vec<Vec<u32>>>,
    shared: HashMap<(u64, u32), Vec<u32>>,
    next: u64,
    /// The shared buffer's words.
    pub buffer: Vec<u32>,
    /// The DMA area's words.
    pub dma: Vec<u32>,
    /// Pages users stored to since their last `cacheflush`: fetching from
    /// them is the program's error (the I-cache may hold older code), so
    /// the world does not.
    unsynced: HashSet<PageKey>,
}

/// A page's contents, whoever maps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PageKey {
    Private(u64),
    File(usize, u32),
    Shared(u64, u32),
}

fn zero() -> Vec<u32> {
    vec![0; WORDS]
}

impl Reference {
    /// `files` files of `pages` zeroed pages, a buffer of `buffer_pages`
    /// zeroed pages (the kernel zeroes it), a DMA area of `dma_bytes`
    /// (unknown contents: the first CPU or device write defines a word).
    pub fn new(files: usize, pages: u32, buffer_pages: u32, dma_bytes: u32) -> Self {
        Reference {
            procs: Vec::new(),
            private: HashMap::new(),
            files: (0..files)
                .map(|_| (0..pages).map(|_| zero()).collect())
                .collect(),
            shared: HashMap::new(),
            next: 1,
            buffer: vec![0; (buffer_pages * PAGE / 4) as usize],
            dma: vec![0; (dma_bytes / 4) as usize],
            unsynced: HashSet::new(),
        }
    }

    /// A fresh id (private pages, shared anonymous objects).
    pub fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn key(&self, p: usize, va: u32) -> Option<PageKey> {
        match *self.procs.get(p)?.pages.get(&(va & !(PAGE - 1)))? {
            Binding::Private(id) => Some(PageKey::Private(id)),
            Binding::File(f, n) | Binding::PrivateFile(f, n) => Some(PageKey::File(f, n)),
            Binding::SharedAnon(o, n) => Some(PageKey::Shared(o, n)),
            Binding::PrivateZero => None,
        }
    }

    /// True if a user stored to process `p`'s page at `va` since its last
    /// `cacheflush` (see [`synced`](Self::synced)).
    pub fn unsynced(&self, p: usize, va: u32) -> bool {
        self.key(p, va).is_some_and(|k| self.unsynced.contains(&k))
    }

    /// Process `p` made its page at `va` visible to instruction fetches
    /// (`cacheflush` over the page).
    pub fn synced(&mut self, p: usize, va: u32) {
        if let Some(k) = self.key(p, va) {
            self.unsynced.remove(&k);
        }
    }

    /// What process `p` reads at `va`, if it maps a page there.
    pub fn load(&self, p: usize, va: u32) -> Option<u32> {
        let word = ((va % PAGE) / 4) as usize;
        let binding = *self.procs.get(p)?.pages.get(&(va & !(PAGE - 1)))?;
        Some(match binding {
            Binding::PrivateZero => 0,
            Binding::Private(id) => self.private.get(&id).map_or(0, |w| w[word]),
            Binding::File(f, n) | Binding::PrivateFile(f, n) => self.files[f][n as usize][word],
            Binding::SharedAnon(o, n) => self.shared.get(&(o, n)).map_or(0, |w| w[word]),
        })
    }

    /// Process `p` stored `value` at `va` (a store that was made). False
    /// if the reference has no page there.
    pub fn store(&mut self, p: usize, va: u32, value: u32) -> bool {
        let page = va & !(PAGE - 1);
        let word = ((va % PAGE) / 4) as usize;
        let Some(binding) = self.procs.get(p).and_then(|s| s.pages.get(&page)).copied() else {
            return false;
        };
        match binding {
            Binding::PrivateZero | Binding::PrivateFile(..) => {
                // The first store: zero-fill or copy-on-write.
                let mut words = match binding {
                    Binding::PrivateFile(f, n) => self.files[f][n as usize].clone(),
                    _ => zero(),
                };
                words[word] = value;
                let id = self.fresh();
                self.private.insert(id, words);
                self.procs[p].pages.insert(page, Binding::Private(id));
            }
            Binding::Private(id) => self.private.entry(id).or_insert_with(zero)[word] = value,
            Binding::File(f, n) => self.files[f][n as usize][word] = value,
            Binding::SharedAnon(o, n) => {
                self.shared.entry((o, n)).or_insert_with(zero)[word] = value
            }
        }
        if let Some(k) = self.key(p, va) {
            self.unsynced.insert(k);
        }
        true
    }

    /// File `f`'s page `n`'s words, to read.
    pub fn file_words(&self, f: usize, n: u32) -> &[u32] {
        &self.files[f][n as usize]
    }

    /// File `f`'s page `n`, word `word`.
    pub fn file_word(&mut self, f: usize, n: u32) -> &mut [u32] {
        &mut self.files[f][n as usize]
    }

    /// Binds `pages` pages from `va` in process `p` as `each(i)` says.
    pub fn bind(
        &mut self,
        p: usize,
        va: u32,
        pages: u32,
        prot: Protection,
        each: impl Fn(u32) -> Binding,
    ) {
        for i in 0..pages {
            if let Some(Binding::Private(id)) = self.procs[p].pages.insert(va + i * PAGE, each(i)) {
                self.private.remove(&id);
            }
            self.procs[p].prot.insert(va + i * PAGE, prot);
        }
    }

    /// `mprotect` of `[va, va + len)` in process `p`.
    pub fn protect(&mut self, p: usize, va: u32, len: u32, prot: Protection) {
        let end = u64::from(va) + u64::from(len);
        for (_, v) in self.procs[p]
            .prot
            .range_mut(va..)
            .take_while(|(k, _)| u64::from(**k) < end)
        {
            *v = prot;
        }
    }

    /// Process `p`'s protection at `va`, if it maps a page there.
    pub fn prot(&self, p: usize, va: u32) -> Option<Protection> {
        self.procs.get(p)?.prot.get(&(va & !(PAGE - 1))).copied()
    }

    /// Unbinds `[va, va + len)` in process `p`; returns the private
    /// bindings removed.
    pub fn unbind(&mut self, p: usize, va: u32, len: u32) {
        let end = u64::from(va) + u64::from(len);
        let gone: Vec<u32> = self.procs[p]
            .pages
            .range(va..)
            .take_while(|(k, _)| u64::from(**k) < end)
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.procs[p].prot.remove(&k);
            if let Some(Binding::Private(id)) = self.procs[p].pages.remove(&k) {
                self.private.remove(&id);
            }
        }
    }

    /// A child of process `p`: private pages copied, the rest shared.
    pub fn fork(&mut self, p: usize) {
        let mut child = self.procs[p].clone();
        for binding in child.pages.values_mut() {
            if let Binding::Private(id) = *binding {
                let words = self.private.get(&id).cloned().unwrap_or_else(zero);
                let new = self.fresh();
                self.private.insert(new, words);
                if self.unsynced.contains(&PageKey::Private(id)) {
                    self.unsynced.insert(PageKey::Private(new));
                }
                *binding = Binding::Private(new);
            }
        }
        self.procs.push(child);
    }

    /// Process `p` is gone (the world swap-removes it too).
    pub fn remove(&mut self, p: usize) -> Process {
        let gone = self.procs.swap_remove(p);
        for binding in gone.pages.values() {
            if let Binding::Private(id) = binding {
                self.private.remove(id);
            }
        }
        gone
    }
}
