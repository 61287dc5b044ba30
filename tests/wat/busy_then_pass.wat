;; A plugin that works hard but within its budget: 1,500,000 iterations of a
;; countdown (about 12 million fuel units of the default 20 million), then
;; `pass`. A wall-clock deadline would judge it by the machine's speed.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"name\":\"fixture\",\"version\":\"0.0.1\"}")
  (data (i32.const 256) "{\"status\":\"pass\"}")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "vouch_abi_version") (result i32) (i32.const 1))
  (func (export "vouch_describe") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 36)))
  (func (export "vouch_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $len)))
    (local.get $p))
  (func $check (param $ptr i32) (param $len i32) (result i64)
    (local $i i32)
    (local.set $i (i32.const 1500000))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $again)))
    (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 17)))
  (export "vouch_check" (func $check))
)
