//! The build key: blake3 over a canonical encoding of the hashed context, the Dockerfile, the target,
//! the platform, the build args that reach the build and the digests of the images it builds from. The
//! one implementation of `docs/build-key.md`.

use crate::context::{HashedFile, HashedKind};
use std::collections::BTreeMap;

/// Bumped whenever the encoding below changes, so old tags are never mistaken for new ones.
pub const KEY_FORMAT_VERSION: u32 = 2;

/// Everything a build key covers.
#[derive(Debug, Clone, Copy)]
pub struct KeyInput<'a> {
    /// Sorted by path (as `hash_context` returns them).
    pub files: &'a [HashedFile],
    pub dockerfile: &'a [u8],
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// Only the args the Dockerfile declares, with the values they receive.
    pub args: &'a BTreeMap<String, String>,
    /// The images the build uses (the stages the target needs, `COPY --from`, mounts, `# syntax`):
    /// reference (as `Reference::key_name`) -> the digest it is pinned to.
    pub images: &'a BTreeMap<String, String>,
    /// Build secrets: mount id -> secret name (never the value).
    pub secrets: &'a BTreeMap<String, String>,
}

/// The key as 64 lowercase hex characters (a valid image tag).
pub fn build_key(input: &KeyInput<'_>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"pipeline build key\0");
    h.update(&KEY_FORMAT_VERSION.to_le_bytes());
    h.update(&(input.files.len() as u64).to_le_bytes());
    for f in input.files {
        match &f.kind {
            HashedKind::File { executable, blake3, .. } => {
                h.update(if *executable { b"x" } else { b"f" });
                bytes(&mut h, f.path.as_bytes());
                h.update(blake3);
            }
            HashedKind::Symlink { target } => {
                h.update(b"l");
                bytes(&mut h, f.path.as_bytes());
                bytes(&mut h, target.as_bytes());
            }
        }
    }
    bytes(&mut h, input.dockerfile);
    optional(&mut h, input.target);
    optional(&mut h, input.platform);
    h.update(&(input.args.len() as u64).to_le_bytes());
    for (name, value) in input.args {
        bytes(&mut h, name.as_bytes());
        bytes(&mut h, value.as_bytes());
    }
    h.update(&(input.images.len() as u64).to_le_bytes());
    for (reference, digest) in input.images {
        bytes(&mut h, reference.as_bytes());
        bytes(&mut h, digest.as_bytes());
    }
    // Only when there are build secrets, so the keys of builds without them stay as they were.
    if !input.secrets.is_empty() {
        h.update(b"secrets");
        h.update(&(input.secrets.len() as u64).to_le_bytes());
        for (id, name) in input.secrets {
            bytes(&mut h, id.as_bytes());
            bytes(&mut h, name.as_bytes());
        }
    }
    h.finalize().to_hex().to_string()
}

fn bytes(h: &mut blake3::Hasher, b: &[u8]) {
    h.update(&(b.len() as u64).to_le_bytes());
    h.update(b);
}

fn optional(h: &mut blake3::Hasher, s: Option<&str>) {
    match s {
        None => {
            h.update(&[0]);
        }
        Some(s) => {
            h.update(&[1]);
            bytes(h, s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding is pinned: a change here must bump KEY_FORMAT_VERSION and docs/build-key.md.
    #[test]
    fn pinned_vector() {
        let files = vec![
            HashedFile {
                path: "a.txt".into(),
                kind: HashedKind::File { executable: false, size: 2, blake3: *blake3::hash(b"hi").as_bytes() },
            },
            HashedFile {
                path: "bin/run".into(),
                kind: HashedKind::File { executable: true, size: 0, blake3: *blake3::hash(b"").as_bytes() },
            },
            HashedFile { path: "link".into(), kind: HashedKind::Symlink { target: "a.txt".into() } },
        ];
        let args: BTreeMap<String, String> = [("VERSION".to_string(), "1.4".to_string())].into();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let images: BTreeMap<String, String> = [("docker.io/library/node:20".to_string(), digest.clone())].into();
        let input = KeyInput {
            files: &files,
            dockerfile: b"FROM node:20\n",
            target: Some("runtime"),
            platform: None,
            args: &args,
            images: &images,
            secrets: &BTreeMap::new(),
        };
        let key = build_key(&input);
        assert_eq!(key.len(), 64);
        // Recompute the documented encoding by hand.
        let mut enc = Vec::new();
        enc.extend_from_slice(b"pipeline build key\0");
        enc.extend_from_slice(&2u32.to_le_bytes());
        enc.extend_from_slice(&3u64.to_le_bytes());
        let field = |e: &mut Vec<u8>, b: &[u8]| {
            e.extend_from_slice(&(b.len() as u64).to_le_bytes());
            e.extend_from_slice(b);
        };
        enc.push(b'f');
        field(&mut enc, b"a.txt");
        enc.extend_from_slice(blake3::hash(b"hi").as_bytes());
        enc.push(b'x');
        field(&mut enc, b"bin/run");
        enc.extend_from_slice(blake3::hash(b"").as_bytes());
        enc.push(b'l');
        field(&mut enc, b"link");
        field(&mut enc, b"a.txt");
        field(&mut enc, b"FROM node:20\n");
        enc.push(1);
        field(&mut enc, b"runtime");
        enc.push(0);
        enc.extend_from_slice(&1u64.to_le_bytes());
        field(&mut enc, b"VERSION");
        field(&mut enc, b"1.4");
        enc.extend_from_slice(&1u64.to_le_bytes());
        field(&mut enc, b"docker.io/library/node:20");
        field(&mut enc, digest.as_bytes());
        assert_eq!(key, blake3::hash(&enc).to_hex().to_string());
        // A base image that moves changes the key.
        let moved: BTreeMap<String, String> =
            [("docker.io/library/node:20".to_string(), format!("sha256:{}", "cd".repeat(32)))].into();
        assert_ne!(build_key(&KeyInput { images: &moved, ..input }), key);
        // Build secrets add their ids and names (never values) after the images.
        let secrets: BTreeMap<String, String> = [("NPM_TOKEN".to_string(), "npm-token".to_string())].into();
        enc.extend_from_slice(b"secrets");
        enc.extend_from_slice(&1u64.to_le_bytes());
        field(&mut enc, b"NPM_TOKEN");
        field(&mut enc, b"npm-token");
        assert_eq!(build_key(&KeyInput { secrets: &secrets, ..input }), blake3::hash(&enc).to_hex().to_string());
    }
}
