//! A project of definitions in a temporary folder, under a unique project name, run through the real
//! binary; every environment it touched is destroyed (volumes too) and its images removed when it is
//! dropped. The end-to-end Docker tests build their fixtures on it.

#![allow(dead_code)] // not every test binary makes projects

use std::cell::RefCell;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub struct Project {
    dir: tempfile::TempDir,
    /// The project's name: `--argstr project NAME`, also the registry prefix of its images.
    pub name: String,
    envs: RefCell<Vec<String>>,
}

impl Project {
    /// An empty project named `<prefix><pid>x<time>` (DNS-safe and unique).
    pub fn new(prefix: &str) -> Project {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("{prefix}{}x{}", std::process::id() % 100_000, t % 1_000_000_000);
        Project { dir: tempfile::tempdir().expect("tempdir"), name, envs: Default::default() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// `pipeline ARGS pipeline.nix --argstr project NAME --argstr env ENV`, without colour or input; the
    /// environment is destroyed when the project is dropped.
    pub fn command(&self, args: &[&str], env: &str) -> Command {
        if !self.envs.borrow().iter().any(|e| e == env) {
            self.envs.borrow_mut().push(env.to_string());
        }
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        c.args(args)
            .arg(self.path().join("pipeline.nix"))
            .args(["--argstr", "project", &self.name, "--argstr", "env", env])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// [`Project::command`] run with extra environment variables.
    pub fn run(&self, args: &[&str], env: &str, vars: &[(&str, &str)]) -> Output {
        let mut c = self.command(args, env);
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().expect("run pipeline")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for env in self.envs.borrow().iter() {
            let _ = self.command(&["destroy", "--yes", "--volumes"], env).output();
        }
        // The images it built and pushed (registry = "127.0.0.1:5000/${project}").
        super::remove_images(&format!("{}/", self.name));
    }
}
