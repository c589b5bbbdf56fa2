//! Process limits a run with many connections needs.

/// Raises this process's soft limit on open files to its hard limit, and
/// returns the new soft limit (`None`: unlimited, or off Linux). Every bench
/// connection holds a socket plus its runtime's epoll and eventfd, and a
/// soft limit of 1024 (a common default) would stop a few hundred of them.
pub fn allow_open_files() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!("could not raise the open-file limit: {error}");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
            panic!("this test needs a finite open-file limit: {limit:?}");
        };
        // One below what it was: enough to see it raised, too little to trouble tests running beside this one.
        let lowered = soft.min(hard) - 1;
        setrlimit(Resource::Nofile, Rlimit { current: Some(lowered), maximum: Some(hard) }).expect("lowering");
        assert_eq!(allow_open_files(), Some(hard));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
