//! The bus flags (`-u/--url`, `-t/--timeout`, `--id`) before the command, as `nats -s URL
//! pub …` takes them: `demitter -u URL peers` is read as `demitter peers -u URL`. Each
//! command that uses a bus declares them itself, so its `--help` lists them and a command
//! without a bus (`pki`, `forwarder`, …) refuses them as a usage error.

use std::ffi::OsString;

/// The flags that take a value and may come before the command.
const WITH_VALUE: [&str; 5] = ["-u", "--url", "-t", "--timeout", "--id"];

/// `args` (the program first) with the bus flags that come before the command moved to
/// just after it. Anything else, and a command line without a command, is left as it is.
pub(crate) fn after_command(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut moved = Vec::new();
    let mut at = 1;
    while let Some(arg) = args.get(at) {
        let text = arg.to_string_lossy();
        if WITH_VALUE.contains(&text.as_ref()) {
            let Some(value) = args.get(at + 1) else {
                return args;
            };
            moved.extend([arg.clone(), value.clone()]);
            at += 2;
        } else if is_joined_flag(&text) {
            moved.push(arg.clone());
            at += 1;
        } else {
            break;
        }
    }
    let Some(command) = args.get(at) else {
        return args;
    };
    if moved.is_empty() || command.to_string_lossy().starts_with('-') {
        return args;
    }
    let mut reordered = Vec::with_capacity(args.len());
    reordered.extend(args.first().cloned());
    reordered.push(command.clone());
    reordered.extend(moved);
    reordered.extend(args.iter().skip(at + 1).cloned());
    reordered
}

/// `--url=URL`, `--timeout=S`, `--id=NAME`, `-uURL`, `-tS`: a flag and its value in one.
fn is_joined_flag(text: &str) -> bool {
    ["--url=", "--timeout=", "--id="]
        .iter()
        .any(|flag| text.starts_with(flag))
        || (text.len() > 2 && (text.starts_with("-u") || text.starts_with("-t")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reorder(line: &str) -> String {
        let args = line.split(' ').map(OsString::from);
        after_command(args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn bus_flags_before_the_command_move_after_it() {
        assert_eq!(reorder("demitter -u U peers"), "demitter peers -u U");
        assert_eq!(
            reorder("demitter --url U -t 3 --id me tap x"),
            "demitter tap --url U -t 3 --id me x"
        );
        assert_eq!(
            reorder("demitter --url=U -t-1 emit a 1"),
            "demitter emit --url=U -t-1 a 1"
        );
        assert_eq!(
            reorder("demitter -u U pki hood office"),
            "demitter pki -u U hood office",
            "moved, so that pki refuses it as a usage error"
        );
    }

    #[test]
    fn anything_else_is_left_alone() {
        for line in [
            "demitter tap x -u U",
            "demitter peers",
            "demitter -u U",
            "demitter -u",
            "demitter -u U --help",
            "demitter --version",
        ] {
            assert_eq!(reorder(line), line);
        }
    }
}
