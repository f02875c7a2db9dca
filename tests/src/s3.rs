//! An S3-protocol server for tests: moto's server (installed by `scripts/s3-tools.sh` into its own
//! virtualenv), started on a free loopback port and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running moto server.
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
    venv: PathBuf,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository").to_path_buf()
}

impl MotoServer {
    /// Installs moto if missing, starts it, and waits until it answers.
    pub fn start() -> anyhow::Result<MotoServer> {
        let status = Command::new("scripts/s3-tools.sh").current_dir(repository()).status()?;
        anyhow::ensure!(status.success(), "scripts/s3-tools.sh failed");
        let venv = std::env::var("TERN_S3_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/tern/s3-venv"));
        let port = crate::free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let server = MotoServer { child, endpoint: format!("http://127.0.0.1:{port}"), venv };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("moto_server did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// The environment that points Tern (object_store) and boto3 at this server.
    pub fn client_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn boto3(&self, script: &str) -> anyhow::Result<String> {
        let output =
            Command::new(self.venv.join("bin/python")).arg("-c").arg(script).envs(self.client_env()).output()?;
        if !output.status.success() {
            bail!("boto3 failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.boto3(&format!(
            "import boto3, os\nboto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).create_bucket(Bucket='{bucket}')"
        ))?;
        Ok(())
    }

    /// Every key in a bucket.
    pub fn list_keys(&self, bucket: &str) -> anyhow::Result<Vec<String>> {
        let listed = self.boto3(&format!(
            "import boto3, os\ns3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}'):\n    \
             for o in page.get('Contents', []):\n        print(o['Key'])"
        ))?;
        Ok(listed.lines().map(str::to_string).collect())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
