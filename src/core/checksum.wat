;; RFC 1071 one's-complement sum (spec CK-1) with WebAssembly SIMD.
;;
;; Why WebAssembly: the checksum is the hot loop of both GSO split and GRO
;; coalescing. Plain JavaScript tops out near 4 GB/s; this loop runs an order
;; of magnitude faster (see bench/checksum.ts).
;;
;; How: the one's-complement sum is byte-order independent (RFC 1071 sec. 2B):
;; summing the bytes as little-endian 16-bit words gives the byte-swapped
;; big-endian sum. So we load 16-byte vectors, widen-add pairs of u16 lanes into
;; u32 lanes (i32x4.extadd_pairwise_i16x8_u), add the lanes up in 64 bits, fold
;; to 16 bits and swap the two bytes once at the end.
;;
;; The memory is imported: each Arena (src/core/arena.ts) owns one
;; WebAssembly.Memory and one instance of this module.
(module
  (import "env" "memory" (memory 1))

  ;; Adds the four u32 lanes of $v to $s.
  (func $lanes (param $v v128) (param $s i64) (result i64)
    (i64.add
      (i64.add
        (i64.add (local.get $s) (i64.extend_i32_u (i32x4.extract_lane 0 (local.get $v))))
        (i64.extend_i32_u (i32x4.extract_lane 1 (local.get $v))))
      (i64.add
        (i64.extend_i32_u (i32x4.extract_lane 2 (local.get $v)))
        (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $v))))))

  ;; sum(ptr, len, initial): CK-1 over memory[ptr, ptr+len) as big-endian
  ;; words, plus `initial` (any u32, e.g. an unfolded pseudo-header sum),
  ;; folded to 16 bits, not inverted.
  (func (export "sum") (param $p i32) (param $n i32) (param $initial i32) (result i32)
    (local $end i32)
    (local $blockEnd i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $s i64)
    (local.set $end (i32.add (local.get $p) (local.get $n)))

    ;; Main loop: 64 bytes per step into four u32x4 accumulators. A lane gains
    ;; at most 2 * 0xFFFF per step, so blocks of 16 KiB steps (1 MiB) cannot
    ;; overflow a lane; after each block the lanes are added into $s.
    (block $mainDone
      (loop $blocks
        (br_if $mainDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 64)))
        (local.set $blockEnd (i32.add (local.get $p) (i32.const 1048576)))
        (if (i32.gt_u (local.get $blockEnd) (local.get $end))
          (then (local.set $blockEnd (local.get $end))))
        (local.set $a (v128.const i64x2 0 0))
        (local.set $b (v128.const i64x2 0 0))
        (local.set $c (v128.const i64x2 0 0))
        (local.set $d (v128.const i64x2 0 0))
        (block $blockDone
          (loop $steps
            (br_if $blockDone
              (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $blockEnd)))
            (local.set $a (i32x4.add (local.get $a)
              (i32x4.extadd_pairwise_i16x8_u (v128.load offset=0 align=1 (local.get $p)))))
            (local.set $b (i32x4.add (local.get $b)
              (i32x4.extadd_pairwise_i16x8_u (v128.load offset=16 align=1 (local.get $p)))))
            (local.set $c (i32x4.add (local.get $c)
              (i32x4.extadd_pairwise_i16x8_u (v128.load offset=32 align=1 (local.get $p)))))
            (local.set $d (i32x4.add (local.get $d)
              (i32x4.extadd_pairwise_i16x8_u (v128.load offset=48 align=1 (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.const 64)))
            (br $steps)))
        (local.set $s (call $lanes (local.get $a) (local.get $s)))
        (local.set $s (call $lanes (local.get $b) (local.get $s)))
        (local.set $s (call $lanes (local.get $c) (local.get $s)))
        (local.set $s (call $lanes (local.get $d) (local.get $s)))
        (br $blocks)))

    ;; Up to three 16-byte steps.
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16)))
        (local.set $s (call $lanes
          (i32x4.extadd_pairwise_i16x8_u (v128.load align=1 (local.get $p)))
          (local.get $s)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $vec)))

    ;; Up to seven 2-byte words.
    (block $wordDone
      (loop $word
        (br_if $wordDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 2)))
        (local.set $s (i64.add (local.get $s)
          (i64.extend_i32_u (i32.load16_u align=1 (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (br $word)))

    ;; A trailing odd byte is the high byte of a big-endian word, i.e. the low
    ;; byte of a little-endian one.
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then (local.set $s (i64.add (local.get $s)
        (i64.extend_i32_u (i32.load8_u (local.get $p)))))))

    ;; Fold 64 -> 16 bits (end-around carry).
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFFFFFF))
                           (i64.shr_u (local.get $s) (i64.const 32))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    ;; Swap to the big-endian domain, add `initial`, fold again.
    (local.set $s (i64.add
      (i64.or (i64.shl (i64.and (local.get $s) (i64.const 0xFF)) (i64.const 8))
              (i64.shr_u (local.get $s) (i64.const 8)))
      (i64.extend_i32_u (local.get $initial))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (i32.wrap_i64 (local.get $s)))
)
