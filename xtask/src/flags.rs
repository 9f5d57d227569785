//! Command-line flags of the xtask commands: `--name value` or
//! `--name=value`, and bare `--switch`.

/// One flag: its name and the value written after `=`, if any.
pub struct Flag<'a> {
    pub name: &'a str,
    pub inline: Option<&'a str>,
    /// The whole argument, for error messages.
    pub arg: &'a str,
}

/// The flags of one command, in order.
pub struct Flags<'a> {
    command: &'static str,
    args: std::slice::Iter<'a, String>,
}

impl<'a> Flags<'a> {
    pub fn new(command: &'static str, args: &'a [String]) -> Self {
        Flags {
            command,
            args: args.iter(),
        }
    }

    /// The next flag, `None` at the end.
    pub fn next_flag(&mut self) -> Option<Flag<'a>> {
        let arg = self.args.next()?;
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        Some(Flag { name, inline, arg })
    }

    /// The value of `flag`: after its `=`, else the next argument.
    pub fn value(&mut self, flag: &Flag<'a>) -> Result<String, String> {
        flag.inline
            .or_else(|| self.args.next().map(String::as_str))
            .map(String::from)
            .ok_or_else(|| format!("{}: {} needs a value", self.command, flag.name))
    }
}
