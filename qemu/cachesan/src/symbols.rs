//! Guest function names for report PCs, from the ELF images the guest runs:
//! a kernel and, for user-space PCs, its programs (`elf=` repeated).

use std::fmt;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};

/// The guest images' code symbols, sorted by address.
#[derive(Debug, Default)]
pub struct Symbols {
    /// (start, size, demangled name without hash).
    functions: Vec<(u32, u32, String)>,
    /// The other names at a function's start (aliases the canonical name
    /// replaced in `functions`), sorted by name: `omit=` takes them too.
    aliases: Vec<(String, u32)>,
}

/// A PC inside a named function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location<'a> {
    /// The function.
    pub name: &'a str,
    /// Bytes from its start.
    pub offset: u32,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}", self.name, self.offset)
    }
}

impl Symbols {
    /// Reads the code symbols of the ELF file at `path`.
    pub fn read(path: &Path) -> Result<Symbols, String> {
        Self::read_all(std::slice::from_ref(&path.to_path_buf()))
    }

    /// Reads the code symbols of every ELF file in `paths` into one table;
    /// the names of the second and later images carry their file name
    /// (`init:main`).
    ///
    /// A code symbol is a function (`STT_FUNC`) or an untyped label
    /// (`STT_NOTYPE`) in an executable section: assembly entry points
    /// (Linux's `ENTRY()` without `ENDPROC()`, vector stubs) are labels.
    /// Where several names share an address the canonical one is kept:
    /// a function over a label, a global over a local, the larger size,
    /// then the name with fewer leading underscores (Linux's `__foo`
    /// aliases of `foo`), then the first in byte order, so that reports
    /// do not depend on the symbol table's order.
    pub fn read_all(paths: &[std::path::PathBuf]) -> Result<Symbols, String> {
        let mut candidates: Vec<(u32, Rank, u32, String)> = Vec::new();
        for (image, path) in paths.iter().enumerate() {
            // The first image (the kernel) names its functions plainly; the
            // others (user programs) prefix their file name, so that a
            // program's `memcpy` is not the kernel's.
            let prefix = match image {
                0 => String::new(),
                _ => format!(
                    "{}:",
                    path.file_name().map_or("?".into(), |n| n.to_string_lossy())
                ),
            };
            let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file =
                object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
            for s in file.symbols() {
                // Not `is_definition`: it leaves out untyped labels of size 0.
                if s.is_undefined() {
                    continue;
                }
                let function = match s.kind() {
                    SymbolKind::Text => true,
                    SymbolKind::Unknown => false,
                    _ => continue,
                };
                let Some(index) = s.section_index() else {
                    continue;
                };
                let Ok(section) = file.section_by_index(index) else {
                    continue;
                };
                if !is_code(&section) {
                    continue;
                }
                let Ok(name) = s.name() else { continue };
                // ARM mapping symbols ($a, $t, $d) are not functions.
                if name.is_empty() || name.starts_with('$') {
                    continue;
                }
                // Thumb functions have bit 0 set in their ELF address.
                let Ok(start) = u32::try_from(s.address()) else {
                    continue;
                };
                // A label of size 0 reaches the next symbol, but never past
                // its section (glibc's `_fini` must not name a JIT page).
                let section_end = section.address().saturating_add(section.size());
                let size = match s.size() {
                    0 => u32::try_from(section_end.saturating_sub(s.address())).unwrap_or(u32::MAX),
                    n => u32::try_from(n).unwrap_or(u32::MAX),
                };
                let rank = Rank {
                    function,
                    global: s.is_global(),
                    size,
                    underscores: std::cmp::Reverse(name.len() - name.trim_start_matches('_').len()),
                };
                let name = format!("{prefix}{:#}", rustc_demangle::demangle(name));
                candidates.push((start & !1, rank, size, name));
            }
        }
        // Per address, the best rank first, then the name.
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.3.cmp(&b.3)));
        let mut aliases = Vec::new();
        let mut functions: Vec<(u32, u32, String)> = Vec::new();
        for (start, _, size, name) in candidates {
            match functions.last() {
                Some(&(last, _, _)) if last == start => aliases.push((name, start)),
                _ => functions.push((start, size, name)),
            }
        }
        aliases.sort_unstable();
        Ok(Symbols { functions, aliases })
    }

    /// The function holding `pc`, if any.
    pub fn lookup(&self, pc: u32) -> Option<Location<'_>> {
        let i = self.functions.partition_point(|&(start, _, _)| start <= pc);
        let (start, size, name) = self.functions.get(i.checked_sub(1)?)?;
        let offset = pc - start;
        (offset < *size).then_some(Location { name, offset })
    }

    /// Where the functions called `name` start (several: local functions
    /// of one name in different files), by their canonical name or an
    /// alias (another name at the same address).
    pub fn starts_of(&self, name: &str) -> Vec<u32> {
        let first = self.aliases.partition_point(|(n, _)| n.as_str() < name);
        let aliased = self.aliases[first..]
            .iter()
            .take_while(|(n, _)| n == name)
            .map(|&(_, start)| start);
        let mut starts: Vec<u32> = self
            .functions
            .iter()
            .filter(|(_, _, n)| n == name)
            .map(|&(start, _, _)| start)
            .chain(aliased)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// How many functions are known.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

/// How canonical a name is among those at one address; greater is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    function: bool,
    global: bool,
    size: u32,
    /// Leading underscores: fewer is better.
    underscores: std::cmp::Reverse<usize>,
}

/// A section holding code: executable, or of text kind.
fn is_code(section: &object::Section<'_, '_>) -> bool {
    const SHF_EXECINSTR: u64 = 4;
    section.kind() == SectionKind::Text
        || matches!(section.flags(), SectionFlags::Elf { sh_flags } if sh_flags & SHF_EXECINSTR != 0)
}

/// ELF images for tests, written to files.
#[cfg(test)]
pub(crate) mod testing {
    use object::{SectionKind, SymbolKind};

    /// An ARM relocatable ELF with `symbols` (name, address, size, kind,
    /// global) in a text section of 0x100 bytes at address 0, and one data
    /// symbol, written to a file of the temporary directory.
    pub(crate) fn elf(
        name: &str,
        symbols: &[(&str, u64, u64, SymbolKind, bool)],
    ) -> std::path::PathBuf {
        use object::write::{Object as Writer, Symbol, SymbolSection};
        use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolScope};
        let mut out = Writer::new(BinaryFormat::Elf, Architecture::Arm, Endianness::Little);
        let text = out.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
        out.append_section_data(text, &[0; 0x100], 4);
        let data = out.add_section(Vec::new(), b".data".to_vec(), SectionKind::Data);
        out.append_section_data(data, &[0; 0x10], 4);
        let mut add = |name: &str, value, size, kind, global: bool, section| {
            out.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value,
                size,
                kind,
                scope: if global {
                    SymbolScope::Linkage
                } else {
                    SymbolScope::Compilation
                },
                weak: false,
                section: SymbolSection::Section(section),
                flags: SymbolFlags::None,
            });
        };
        for &(name, value, size, kind, global) in symbols {
            add(name, value, size, kind, global, text);
        }
        add("a_variable", 0, 4, SymbolKind::Data, true, data);
        let path =
            std::env::temp_dir().join(format!("cachesan-symbols-{}-{name}.o", std::process::id()));
        std::fs::write(&path, out.write().unwrap()).unwrap();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::testing::elf;
    use super::*;

    #[test]
    fn lookup_finds_the_enclosing_function() {
        let symbols = Symbols {
            functions: vec![
                (0x100, 0x20, "a".into()),
                (0x120, 0xe0, "asm".into()),
                (0x200, 0x10, "b".into()),
            ],
            aliases: Vec::new(),
        };
        assert_eq!(symbols.lookup(0xfc), None);
        assert_eq!(
            symbols.lookup(0x104),
            Some(Location {
                name: "a",
                offset: 4
            })
        );
        assert_eq!(symbols.lookup(0x130).map(|l| l.name), Some("asm"));
        assert_eq!(
            symbols.lookup(0x20c).map(|l| l.to_string()),
            Some("b+0xc".into())
        );
        assert_eq!(symbols.lookup(0x210), None);
    }

    #[test]
    fn labels_count_and_the_canonical_alias_is_named() {
        let path = elf(
            "aliases",
            &[
                ("__clear_page", 0x0, 0x40, SymbolKind::Text, true),
                ("clear_page", 0x0, 0x40, SymbolKind::Text, true),
                ("local_alias", 0x0, 0x40, SymbolKind::Text, false),
                ("vector_stub", 0x80, 0, SymbolKind::Label, true),
                ("a_label", 0x40, 0, SymbolKind::Label, true),
                ("a_function", 0x40, 0x20, SymbolKind::Text, false),
            ],
        );
        let symbols = Symbols::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The global function without leading underscores.
        assert_eq!(symbols.lookup(0x10).map(|l| l.name), Some("clear_page"));
        // A function over a label at the same address.
        assert_eq!(symbols.lookup(0x44).map(|l| l.name), Some("a_function"));
        // A label of its own names the code up to the next symbol.
        assert_eq!(
            symbols.lookup(0x90).map(|l| l.to_string()),
            Some("vector_stub+0x10".into())
        );
        // Data symbols are not code.
        assert!(symbols.functions.iter().all(|f| f.2 != "a_variable"));
        // `omit=` finds a function by any of its names.
        for name in ["clear_page", "__clear_page", "local_alias"] {
            assert_eq!(symbols.starts_of(name), [0], "{name}");
        }
        assert_eq!(symbols.starts_of("a_label"), [0x40]);
        assert!(symbols.starts_of("a_variable").is_empty());
    }

    #[test]
    fn several_images_share_one_table() {
        let kernel = elf("kernel", &[("kfunc", 0x0, 0x10, SymbolKind::Text, true)]);
        let user = elf("user", &[("ufunc", 0x20, 0x10, SymbolKind::Text, true)]);
        let symbols = Symbols::read_all(&[kernel.clone(), user.clone()]).unwrap();
        let user_name = user.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::remove_file(kernel).unwrap();
        std::fs::remove_file(user).unwrap();
        assert_eq!(symbols.lookup(0x4).map(|l| l.name), Some("kfunc"));
        let user = format!("{}:ufunc", user_name);
        assert_eq!(symbols.lookup(0x24).map(|l| l.name), Some(user.as_str()));
    }

    #[test]
    fn a_missing_image_is_an_error() {
        assert!(Symbols::read(Path::new("/nonexistent/kernel.elf")).is_err());
    }
}
