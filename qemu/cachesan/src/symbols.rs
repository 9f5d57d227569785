//! Guest function names for report PCs, from the ELF image the guest booted.

use std::fmt;
use std::path::Path;

use object::{Object, ObjectSymbol, SymbolKind};

/// The guest image's function symbols, sorted by address.
#[derive(Debug, Default)]
pub struct Symbols {
    /// (start, size, demangled name without hash).
    functions: Vec<(u32, u32, String)>,
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
    /// Reads the function symbols of the ELF file at `path`.
    pub fn read(path: &Path) -> Result<Symbols, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut functions: Vec<(u32, u32, String)> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| {
                let name = s.name().ok()?;
                // ARM mapping symbols ($a, $t, $d) are not functions.
                if name.is_empty() || name.starts_with('$') {
                    return None;
                }
                // Thumb functions have bit 0 set in their ELF address.
                let start = u32::try_from(s.address()).ok()? & !1;
                let size = u32::try_from(s.size()).unwrap_or(u32::MAX);
                Some((start, size, format!("{:#}", rustc_demangle::demangle(name))))
            })
            .collect();
        functions.sort_by_key(|&(start, size, _)| (start, std::cmp::Reverse(size)));
        Ok(Symbols { functions })
    }

    /// The function holding `pc`, if any.
    pub fn lookup(&self, pc: u32) -> Option<Location<'_>> {
        let i = self.functions.partition_point(|&(start, _, _)| start <= pc);
        let (start, size, name) = self.functions.get(i.checked_sub(1)?)?;
        let offset = pc - start;
        // A zero size (hand-written assembly) is taken to reach the next symbol.
        (offset < *size || *size == 0).then_some(Location { name, offset })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_enclosing_function() {
        let symbols = Symbols {
            functions: vec![
                (0x100, 0x20, "a".into()),
                (0x120, 0, "asm".into()),
                (0x200, 0x10, "b".into()),
            ],
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
    fn a_missing_image_is_an_error() {
        assert!(Symbols::read(Path::new("/nonexistent/kernel.elf")).is_err());
    }
}
