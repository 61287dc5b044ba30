//! The plugin host: WebAssembly check plugins (ABI v1, `plugins/ABI.md`) run
//! on wasmtime in a sandbox. Each plugin is compiled once and cached; every
//! call gets a fresh instance, a fuel budget, a memory cap and an output
//! cap. The fuel budget (a count of WebAssembly instructions) decides when a
//! plugin has run too long, so a slow machine judges exactly as a fast one;
//! an epoch deadline far beyond it is only a safety net. Nothing a plugin does (trap, endless loop, memory hunger, garbage
//! output) fails more than its own check, which the engine then reports as
//! `inconclusive` with the reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vouch_engine::framework::PluginCatalog;
use vouch_engine::{PluginHost, PluginInfo};
use wasmtime::{
    Config, Engine, ExternType, InstancePre, Linker, Module, ResourceLimiter, Store, Trap, ValType,
};

/// The ABI version this host speaks.
pub const ABI_VERSION: i32 = 1;
/// The only module plugins may import from, and its one function.
pub const HOST_MODULE: &str = "vouch_v1";
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel: wasmtime's count of executed WebAssembly instructions. A call
    /// that uses it up is inconclusive, on every machine alike. Recorded in
    /// packets with each plugin.
    pub fuel: u64,
    /// The safety net: a wall-clock deadline that ends a call the fuel did
    /// not (it should never be what decides).
    pub time: Duration,
    pub memory: usize,
    pub output: usize,
}

/// The default fuel budget: about 12 ms of a looping plugin on this
/// project's machine, and 35 times what the example plugin uses to judge a
/// month of daily backups (560,000 to 580,000 units per service on
/// `examples/records/full.json`).
pub const DEFAULT_FUEL: u64 = 20_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: DEFAULT_FUEL,
            time: Duration::from_secs(2),
            memory: 16 * 1024 * 1024,
            output: 1024 * 1024,
        }
    }
}

/// Why a module is not a usable plugin, in words that say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(pub String);

fn err(msg: impl Into<String>) -> PluginError {
    PluginError(msg.into())
}

/// What one call may use, tracked so that a denial can be named.
struct CallState {
    memory_cap: usize,
    memory_denied: bool,
    log: Vec<String>,
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied = true;
            return Err(wasmtime::Error::msg("memory cap reached"));
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
    fn instances(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
}

struct Loaded {
    info: PluginInfo,
    pre: InstancePre<CallState>,
}

/// Increments the engine's epoch every tick until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The loaded plugins.
pub struct Plugins {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    plugins: BTreeMap<String, Loaded>,
    _ticker: Ticker,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub use vouch_engine::signing::sha256_hex;

fn trap_reason(
    e: &wasmtime::Error,
    state: &CallState,
    limits: &Limits,
    started: Instant,
) -> String {
    if state.memory_denied {
        return format!(
            "exceeded the memory cap of {} MiB",
            limits.memory / (1024 * 1024)
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!(
            "ran out of its budget of {} fuel units (WebAssembly instructions: the same count on every machine)",
            limits.fuel
        ),
        Some(Trap::Interrupt) => format!(
            "exceeded the safety-net deadline of {} ms before its fuel ran out",
            limits
                .time
                .as_millis()
                .max(started.elapsed().as_millis().min(limits.time.as_millis()))
        ),
        Some(t) => format!("trapped: {t}"),
        None => format!(
            "failed: {}",
            e.to_string().lines().next().unwrap_or_default()
        ),
    }
}

impl Plugins {
    pub fn new(limits: Limits) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(true);
        config.max_wasm_stack(512 * 1024);
        let engine = Engine::new(&config)
            .map_err(|e| err(format!("cannot start the WebAssembly engine: {e}")))?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        linker
            .func_wrap(
                HOST_MODULE,
                "log",
                |mut caller: wasmtime::Caller<'_, CallState>, ptr: i32, len: i32| {
                    let Some(wasmtime::Extern::Memory(mem)) = caller.get_export("memory") else {
                        return;
                    };
                    let len = (len.max(0) as usize).min(512);
                    let mut buf = vec![0u8; len];
                    if mem.read(&caller, ptr.max(0) as usize, &mut buf).is_ok()
                        && caller.data().log.len() < 16
                    {
                        let line: String = String::from_utf8_lossy(&buf).escape_debug().collect();
                        caller.data_mut().log.push(line);
                    }
                },
            )
            .map_err(|e| err(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticking, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("vouch-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| err(format!("cannot start the plugin timer: {e}")))?;
        Ok(Plugins {
            engine,
            linker,
            limits,
            plugins: BTreeMap::new(),
            _ticker: Ticker { stop },
        })
    }

    /// Loads every `*.wasm` of `dir`, reporting every refused file at once.
    pub fn load_dir(dir: &Path, limits: Limits) -> Result<Self, PluginError> {
        let mut plugins = Self::new(limits)?;
        let entries = std::fs::read_dir(dir).map_err(|e| {
            err(format!(
                "cannot read the plugins directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        let mut problems = vec![];
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let result = std::fs::read(&path)
                .map_err(|e| err(e.to_string()))
                .and_then(|bytes| plugins.add(&name, &bytes));
            if let Err(e) = result {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
        if problems.is_empty() {
            Ok(plugins)
        } else {
            Err(err(problems.join("\n")))
        }
    }

    /// Validates and adds a plugin under `name`.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<&PluginInfo, PluginError> {
        let loaded = self.inspect(name, bytes)?;
        self.plugins.insert(name.to_owned(), loaded);
        Ok(&self.plugins[name].info)
    }

    /// Checks a module against ABI v1: its imports, its exports, its ABI
    /// version and its self-description.
    fn inspect(&self, name: &str, bytes: &[u8]) -> Result<Loaded, PluginError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(format!("plugin name `{name}` must be letters, digits, `_` and `-` (the file name without .wasm)")));
        }
        let module = Module::new(&self.engine, bytes).map_err(|e| {
            err(format!(
                "not a WebAssembly module: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })?;
        for import in module.imports() {
            let allowed = import.module() == HOST_MODULE
                && import.name() == "log"
                && matches!(import.ty(), ExternType::Func(f) if f.params().map(|p| matches!(p, ValType::I32)).eq([true, true]) && f.results().len() == 0);
            if !allowed {
                let hint = if import.module().starts_with("wasi") {
                    "plugins get no WASI: build for wasm32-unknown-unknown (not wasm32-wasip1) with vouch-plugin-sdk"
                } else {
                    "the only import allowed is `vouch_v1.log(ptr: i32, len: i32)`"
                };
                return Err(err(format!(
                    "imports `{}.{}`, which the host does not provide; {hint}",
                    import.module(),
                    import.name()
                )));
            }
        }
        let want: [(&str, &[ValType], &[ValType]); 4] = [
            ("vouch_abi_version", &[], &[ValType::I32]),
            ("vouch_describe", &[], &[ValType::I64]),
            ("vouch_alloc", &[ValType::I32], &[ValType::I32]),
            (
                "vouch_check",
                &[ValType::I32, ValType::I32],
                &[ValType::I64],
            ),
        ];
        let exports: BTreeMap<String, ExternType> = module
            .exports()
            .map(|e| (e.name().to_owned(), e.ty()))
            .collect();
        if !matches!(exports.get("memory"), Some(ExternType::Memory(_))) {
            return Err(err(
                "does not export its `memory`; vouch-plugin-sdk's `plugin!` provides every export",
            ));
        }
        for (export, params, results) in want {
            let ok = matches!(exports.get(export), Some(ExternType::Func(f))
                if f.params().map(|p| p.to_string()).eq(params.iter().map(|p| p.to_string()))
                && f.results().map(|r| r.to_string()).eq(results.iter().map(|r| r.to_string())));
            if !ok {
                return Err(err(format!("does not export `{export}` with the ABI v1 signature; vouch-plugin-sdk's `plugin!` provides it")));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| err(e.to_string()))?;
        let version = {
            let mut store = self.store();
            let started = Instant::now();
            let instance = pre
                .instantiate(&mut store)
                .map_err(|e| err(format!("cannot start: {e}")))?;
            let abi = instance
                .get_typed_func::<(), i32>(&mut store, "vouch_abi_version")
                .and_then(|f| f.call(&mut store, ()))
                .map_err(|e| {
                    err(format!(
                        "vouch_abi_version {}",
                        trap_reason(&e, store.data(), &self.limits, started)
                    ))
                })?;
            if abi != ABI_VERSION {
                return Err(err(format!("speaks ABI version {abi}; this host speaks {ABI_VERSION}: rebuild it with vouch-plugin-sdk 1.x")));
            }
            let packed = instance
                .get_typed_func::<(), i64>(&mut store, "vouch_describe")
                .and_then(|f| f.call(&mut store, ()))
                .map_err(|e| {
                    err(format!(
                        "vouch_describe {}",
                        trap_reason(&e, store.data(), &self.limits, started)
                    ))
                })?;
            let bytes = read_packed(&instance, &mut store, packed, 4096).map_err(err)?;
            let desc: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("vouch_describe is not JSON: {e}")))?;
            desc["version"]
                .as_str()
                .filter(|v| !v.is_empty() && v.len() <= 64)
                .map(str::to_owned)
                .ok_or_else(|| err("vouch_describe gives no `version`"))?
        };
        Ok(Loaded {
            info: PluginInfo {
                name: name.to_owned(),
                version,
                sha256: sha256_hex(bytes),
                fuel: Some(self.limits.fuel),
            },
            pre,
        })
    }

    fn store(&self) -> Store<CallState> {
        let mut store = Store::new(
            &self.engine,
            CallState {
                memory_cap: self.limits.memory,
                memory_denied: false,
                log: vec![],
            },
        );
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        // Setting fuel only fails when the engine does not consume it, and
        // this engine's configuration does; were it to, the call would run
        // on the safety net alone.
        let _ = store.set_fuel(self.limits.fuel);
        let ticks = (self.limits.time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    pub fn names(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }

    fn run(&self, loaded: &Loaded, input: &[u8]) -> Result<Vec<u8>, String> {
        let mut store = self.store();
        let started = Instant::now();
        let result = (|| -> Result<Vec<u8>, String> {
            let fail = |e: wasmtime::Error, store: &Store<CallState>| {
                trap_reason(&e, store.data(), &self.limits, started)
            };
            let instance = loaded
                .pre
                .instantiate(&mut store)
                .map_err(|e| fail(e, &store))?;
            let len = i32::try_from(input.len()).map_err(|_| "input too large".to_owned())?;
            let alloc = instance
                .get_typed_func::<i32, i32>(&mut store, "vouch_alloc")
                .map_err(|e| fail(e, &store))?;
            let ptr = alloc.call(&mut store, len).map_err(|e| fail(e, &store))?;
            let memory = instance
                .get_memory(&mut store, "memory")
                .ok_or("no memory export")?;
            memory
                .write(&mut store, ptr as u32 as usize, input)
                .map_err(|_| "vouch_alloc returned memory the input does not fit in".to_owned())?;
            let check = instance
                .get_typed_func::<(i32, i32), i64>(&mut store, "vouch_check")
                .map_err(|e| fail(e, &store))?;
            let packed = check
                .call(&mut store, (ptr, len))
                .map_err(|e| fail(e, &store))?;
            read_packed(&instance, &mut store, packed, self.limits.output)
        })();
        for line in &store.data().log {
            tracing::debug!(plugin = %loaded.info.name, "{line}");
        }
        let used = self.limits.fuel - store.get_fuel().unwrap_or(0);
        tracing::debug!(plugin = %loaded.info.name, fuel = used, "plugin call");
        result
    }
}

/// Reads the (pointer, length) a guest returned, refusing more than `cap` bytes.
fn read_packed(
    instance: &wasmtime::Instance,
    store: &mut Store<CallState>,
    packed: i64,
    cap: usize,
) -> Result<Vec<u8>, String> {
    let ptr = (packed as u64 >> 32) as usize;
    let len = (packed as u64 & 0xffff_ffff) as usize;
    if len > cap {
        return Err(format!(
            "output of {len} bytes exceeds the cap of {cap} bytes"
        ));
    }
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or("no memory export")?;
    let mut out = vec![0u8; len];
    memory
        .read(&*store, ptr, &mut out)
        .map_err(|_| format!("output at {ptr}+{len} lies outside the plugin's memory"))?;
    Ok(out)
}

impl PluginHost for Plugins {
    fn call(&self, name: &str, input: &[u8]) -> Result<Vec<u8>, String> {
        let loaded = self
            .plugins
            .get(name)
            .ok_or_else(|| format!("plugin `{name}` is not loaded"))?;
        self.run(loaded, input)
    }

    fn info(&self, name: &str) -> Option<PluginInfo> {
        self.plugins.get(name).map(|p| p.info.clone())
    }
}

impl PluginCatalog for Plugins {
    fn sha256(&self, name: &str) -> Option<String> {
        self.plugins.get(name).map(|p| p.info.sha256.clone())
    }
    fn describe(&self) -> String {
        format!(
            "the plugins directory (loaded: {})",
            if self.plugins.is_empty() {
                "none".to_owned()
            } else {
                self.names().join(", ")
            }
        )
    }
}
