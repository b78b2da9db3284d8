;; RFC 1071 one's-complement sum (spec CK-1) with WebAssembly SIMD.
;;
;; Why WebAssembly: the checksum is the hot loop of both GSO split and GRO
;; coalescing. Plain JavaScript tops out near 4 GB/s; this loop runs an order
;; of magnitude faster (bench/run.ts reports it as the baseline).
;;
;; How: the one's-complement sum is byte-order independent (RFC 1071 sec. 2B):
;; summing the bytes as little-endian 16-bit words gives the byte-swapped
;; big-endian sum. So we load 16-byte vectors of little-endian u16 words, add
;; them up in 64 bits, fold to 16 bits and swap the two bytes once at the end.
;;
;; Bias trick: x86 has a one-instruction signed pairwise widening add
;; (pmaddwd = i32x4.dot_i16x8_s with a vector of ones) but none for unsigned
;; words. Flipping bit 15 (xor 0x8000) maps u16 w to the s16 value w - 32768,
;; so the signed sum of n flipped words is the unsigned sum - n * 32768; we add
;; n * 32768 back once at the end. 1.7x faster on 64 KiB than
;; i32x4.extadd_pairwise_i16x8_u.
;;
;; Short tails: the last 1..15 bytes are summed as one vector load with the
;; bytes past the end masked to zero (a masked word adds 0 once unbiased),
;; when those 16 bytes lie inside the memory; otherwise word by word. This
;; halves the fixed cost of a packet-sized call.
;;
;; V8 (Node 20) does not inline calls between WebAssembly functions and keeps
;; no global in a register, so the vector steps are written out inline with
;; their constants as immediates: a call per vector cost 5x.
;;
;; Exports:
;;   sum(ptr, len, initial)          CK-1 over memory[ptr, ptr+len)
;;   copysum(dst, src, len, initial) copies memory[src, src+len) to dst and
;;                                   returns CK-1 of the copied bytes: the GSO
;;                                   split reads each payload byte once.
;;                                   Writes exactly len bytes at dst.
;;   split(...)                      the rest of a GSO split after its first
;;                                   segment (see the function).
;; Both return the folded, non-inverted 16-bit sum plus `initial` (any u32).
;;
;; The memory is imported: each Arena (src/core/arena.ts) owns one
;; WebAssembly.Memory and one instance of this module.
(module
  (import "env" "memory" (memory 1))

  ;; Adds the four i32 lanes of $v (signed, see the bias note) to $s.
  (func $lanes (param $v v128) (param $s i64) (result i64)
    (i64.add
      (i64.add
        (i64.add (local.get $s) (i64.extend_i32_s (i32x4.extract_lane 0 (local.get $v))))
        (i64.extend_i32_s (i32x4.extract_lane 1 (local.get $v))))
      (i64.add
        (i64.extend_i32_s (i32x4.extract_lane 2 (local.get $v)))
        (i64.extend_i32_s (i32x4.extract_lane 3 (local.get $v))))))

  ;; Folds a little-endian-domain 64-bit sum to 16 bits, swaps it into the
  ;; big-endian domain, adds `initial` and folds again.
  (func $finish (param $s i64) (param $initial i32) (result i32)
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFFFFFF))
                           (i64.shr_u (local.get $s) (i64.const 32))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF))
                           (i64.shr_u (local.get $s) (i64.const 16))))
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

  (func (export "sum") (param $p i32) (param $n i32) (param $initial i32) (result i32)
    (local $end i32) (local $blockEnd i32) (local $start i32) (local $t i32) (local $u i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $s i64)
    (local.set $start (local.get $p))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    ;; Main loop: 64 bytes per step into four i32x4 accumulators. A lane moves
    ;; by at most 65536 per step; blocks of 4 Ki steps (256 KiB) keep each lane
    ;; within 2^28, so the four accumulators add lane-wise without overflow
    ;; before the lanes go into the 64-bit $s.
    (block $mainDone
      (loop $blocks
        (br_if $mainDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 64)))
        (local.set $blockEnd (i32.add (local.get $p) (i32.const 262144)))
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
            (local.set $v0 (v128.load offset=0 align=1 (local.get $p)))
            (local.set $v1 (v128.load offset=16 align=1 (local.get $p)))
            (local.set $v2 (v128.load offset=32 align=1 (local.get $p)))
            (local.set $v3 (v128.load offset=48 align=1 (local.get $p)))
            (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s (v128.xor (local.get $v0) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $b (i32x4.add (local.get $b) (i32x4.dot_i16x8_s (v128.xor (local.get $v1) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $c (i32x4.add (local.get $c) (i32x4.dot_i16x8_s (v128.xor (local.get $v2) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $d (i32x4.add (local.get $d) (i32x4.dot_i16x8_s (v128.xor (local.get $v3) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $p (i32.add (local.get $p) (i32.const 64)))
            (br $steps)))
        (local.set $s (call $lanes
          (i32x4.add (i32x4.add (local.get $a) (local.get $b))
                     (i32x4.add (local.get $c) (local.get $d)))
          (local.get $s)))
        (br $blocks)))

    ;; Up to three whole 16-byte vectors, then the masked partial one.
    (local.set $a (v128.const i64x2 0 0))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16)))
        (local.set $v0 (v128.load align=1 (local.get $p)))
        (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s (v128.xor (local.get $v0) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $vec)))
    (local.set $t (i32.sub (local.get $end) (local.get $p)))
    (if (i32.and
          (i32.ne (local.get $t) (i32.const 0))
          (i32.le_u (i32.add (local.get $p) (i32.const 16))
                    (i32.shl (memory.size) (i32.const 16))))
      (then
        (local.set $a (i32x4.add (local.get $a)
          (i32x4.dot_i16x8_s (v128.xor (v128.and (v128.load align=1 (local.get $p)) (i8x16.gt_u (i8x16.splat (local.get $t)) (v128.const i8x16 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15))) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
        ;; 16 bytes counted for the bias; nothing left for the word loop.
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $end (local.get $p))))
    (local.set $s (call $lanes (local.get $a) (local.get $s)))
    ;; Undo the bias: (bytes summed as vectors) / 2 words * 32768.
    (local.set $s (i64.add (local.get $s)
      (i64.shl (i64.extend_i32_u (i32.sub (local.get $p) (local.get $start))) (i64.const 14))))

    ;; Fallback at the very end of the memory: up to seven 2-byte words.
    (block $wordDone
      (loop $word
        (br_if $wordDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 2)))
        (local.set $t (i32.load16_u align=1 (local.get $p)))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $t))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (br $word)))
    ;; A trailing odd byte is the high byte of a big-endian word, i.e. the low
    ;; byte of a little-endian one.
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $t (i32.load8_u (local.get $p)))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $t))))))
    (call $finish (local.get $s) (local.get $initial)))

  ;; As `sum`, storing every loaded byte at the destination. The ranges must
  ;; not overlap unless dst <= src.
  (func $copysum (export "copysum") (param $dst i32) (param $p i32) (param $n i32) (param $initial i32) (result i32)
    (local $end i32) (local $blockEnd i32) (local $start i32) (local $t i32) (local $u i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $s i64)
    (local.set $start (local.get $p))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    ;; Main loop: 64 bytes per step into four i32x4 accumulators. A lane moves
    ;; by at most 65536 per step; blocks of 4 Ki steps (256 KiB) keep each lane
    ;; within 2^28, so the four accumulators add lane-wise without overflow
    ;; before the lanes go into the 64-bit $s.
    (block $mainDone
      (loop $blocks
        (br_if $mainDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 64)))
        (local.set $blockEnd (i32.add (local.get $p) (i32.const 262144)))
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
            (local.set $v0 (v128.load offset=0 align=1 (local.get $p)))
            (local.set $v1 (v128.load offset=16 align=1 (local.get $p)))
            (local.set $v2 (v128.load offset=32 align=1 (local.get $p)))
            (local.set $v3 (v128.load offset=48 align=1 (local.get $p)))
            (v128.store offset=0 align=1 (local.get $dst) (local.get $v0))
            (v128.store offset=16 align=1 (local.get $dst) (local.get $v1))
            (v128.store offset=32 align=1 (local.get $dst) (local.get $v2))
            (v128.store offset=48 align=1 (local.get $dst) (local.get $v3))
            (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s (v128.xor (local.get $v0) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $b (i32x4.add (local.get $b) (i32x4.dot_i16x8_s (v128.xor (local.get $v1) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $c (i32x4.add (local.get $c) (i32x4.dot_i16x8_s (v128.xor (local.get $v2) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $d (i32x4.add (local.get $d) (i32x4.dot_i16x8_s (v128.xor (local.get $v3) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
            (local.set $p (i32.add (local.get $p) (i32.const 64)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
            (br $steps)))
        (local.set $s (call $lanes
          (i32x4.add (i32x4.add (local.get $a) (local.get $b))
                     (i32x4.add (local.get $c) (local.get $d)))
          (local.get $s)))
        (br $blocks)))

    ;; Up to three whole 16-byte vectors, then the masked partial one.
    (local.set $a (v128.const i64x2 0 0))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 16)))
        (local.set $v0 (v128.load align=1 (local.get $p)))
        (v128.store align=1 (local.get $dst) (local.get $v0))
        (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s (v128.xor (local.get $v0) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $vec)))
    (local.set $t (i32.sub (local.get $end) (local.get $p)))
    (if (i32.and
          (i32.ne (local.get $t) (i32.const 0))
          (i32.le_u (i32.add (local.get $p) (i32.const 16))
                    (i32.shl (memory.size) (i32.const 16))))
      (then
        ;; Exact-length copy of the 1..15 tail bytes (never past dst + len).
        (local.set $u (local.get $p))
        (if (i32.ge_u (local.get $t) (i32.const 8))
          (then
            (i64.store align=1 (local.get $dst) (i64.load align=1 (local.get $u)))
            (local.set $u (i32.add (local.get $u) (i32.const 8)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 8)))))
        (if (i32.ge_u (i32.sub (local.get $end) (local.get $u)) (i32.const 4))
          (then
            (i32.store align=1 (local.get $dst) (i32.load align=1 (local.get $u)))
            (local.set $u (i32.add (local.get $u) (i32.const 4)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 4)))))
        (if (i32.ge_u (i32.sub (local.get $end) (local.get $u)) (i32.const 2))
          (then
            (i32.store16 align=1 (local.get $dst) (i32.load16_u align=1 (local.get $u)))
            (local.set $u (i32.add (local.get $u) (i32.const 2)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 2)))))
        (if (i32.lt_u (local.get $u) (local.get $end))
          (then (i32.store8 (local.get $dst) (i32.load8_u (local.get $u)))))
        (local.set $a (i32x4.add (local.get $a)
          (i32x4.dot_i16x8_s (v128.xor (v128.and (v128.load align=1 (local.get $p)) (i8x16.gt_u (i8x16.splat (local.get $t)) (v128.const i8x16 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15))) (v128.const i16x8 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000 0x8000)) (v128.const i16x8 1 1 1 1 1 1 1 1))))
        ;; 16 bytes counted for the bias; nothing left for the word loop.
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $end (local.get $p))))
    (local.set $s (call $lanes (local.get $a) (local.get $s)))
    ;; Undo the bias: (bytes summed as vectors) / 2 words * 32768.
    (local.set $s (i64.add (local.get $s)
      (i64.shl (i64.extend_i32_u (i32.sub (local.get $p) (local.get $start))) (i64.const 14))))

    ;; Fallback at the very end of the memory: up to seven 2-byte words.
    (block $wordDone
      (loop $word
        (br_if $wordDone (i32.lt_u (i32.sub (local.get $end) (local.get $p)) (i32.const 2)))
        (local.set $t (i32.load16_u align=1 (local.get $p)))
        (i32.store16 align=1 (local.get $dst) (local.get $t))
        (local.set $dst (i32.add (local.get $dst) (i32.const 2)))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $t))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (br $word)))
    ;; A trailing odd byte is the high byte of a big-endian word, i.e. the low
    ;; byte of a little-endian one.
    (if (i32.lt_u (local.get $p) (local.get $end))
      (then
        (local.set $t (i32.load8_u (local.get $p)))
        (i32.store8 (local.get $dst) (local.get $t))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $t))))))
    (call $finish (local.get $s) (local.get $initial)))

  ;; GSO split, segments $i.. of a well-formed frame whose segment 0 the
  ;; caller (gso.ts splitFast, fused path) has already built at $out: the
  ;; same steps per segment as there, without a JS-to-WebAssembly call, a
  ;; TypedArray#set and a dozen byte stores per segment. Each header is
  ;; copied from segment 0's, whose per-segment fields are all rewritten:
  ;; IPv4 total length, ID and checksum, or IPv6 payload length; TCP sequence,
  ;; flags byte and checksum, or UDP length and checksum. Stores and folds
  ;; are written out inline (V8 does not inline calls, see above); the header
  ;; copy uses 16-byte vectors (memory.copy is a call into the runtime).
  ;;   $src: the packet `in` (RD-8 fields zeroed); $hl, $cs, $gs, $len: header
  ;;   length (>= 28), csum_start, gso_size, packet length; $kind: 1 IPv4,
  ;;   2 UDP; $ipBase, $thBase: template sums with the per-segment words
  ;;   zeroed ($thBase with the pseudo-header addresses and protocol); $co:
  ;;   checksum field offset in the transport header.
  ;; Returns the bytes written from $out on, segment 0 included.
  (func (export "split")
    (param $out i32) (param $src i32) (param $hl i32) (param $cs i32) (param $gs i32) (param $len i32)
    (param $kind i32) (param $origId i32) (param $firstSeq i32) (param $ipBase i32) (param $thBase i32)
    (param $midFlags i32) (param $lastFlags i32) (param $co i32) (param $i i32) (result i32)
    (local $segStart i32) (local $segLen i32) (local $total i32) (local $o i32) (local $th i32)
    (local $thLen i32) (local $v i32) (local $seq i32) (local $f i32) (local $k i32) (local $s i64) (local $h i64)
    (local.set $thLen (i32.sub (local.get $hl) (local.get $cs)))
    (local.set $segStart (i32.add (local.get $hl) (i32.mul (local.get $i) (local.get $gs))))
    ;; Every segment before $i is full: hl + gs bytes.
    (local.set $o (i32.add (local.get $out) (i32.mul (local.get $i) (i32.add (local.get $hl) (local.get $gs)))))
    (block $done
      (loop $seg
        (br_if $done (i32.ge_u (local.get $segStart) (local.get $len)))
        (local.set $segLen (i32.sub (local.get $len) (local.get $segStart)))
        (if (i32.gt_u (local.get $segLen) (local.get $gs)) (then (local.set $segLen (local.get $gs))))
        (local.set $total (i32.add (local.get $hl) (local.get $segLen)))
        ;; Header copy: whole vectors, then the last 16 bytes (overlapping).
        (local.set $k (i32.const 0))
        (block $copied
          (loop $copy
            (br_if $copied (i32.gt_u (i32.add (local.get $k) (i32.const 16)) (local.get $hl)))
            (v128.store (i32.add (local.get $o) (local.get $k)) (v128.load (i32.add (local.get $out) (local.get $k))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $copy)))
        (local.set $k (i32.sub (local.get $hl) (i32.const 16)))
        (v128.store (i32.add (local.get $o) (local.get $k)) (v128.load (i32.add (local.get $out) (local.get $k))))
        (if (i32.and (local.get $kind) (i32.const 1))
          (then
            (i32.store8 offset=2 (local.get $o) (i32.shr_u (local.get $total) (i32.const 8))) (i32.store8 offset=3 (local.get $o) (local.get $total))
            (local.set $v (i32.and (i32.add (local.get $origId) (local.get $i)) (i32.const 0xFFFF)))
            (i32.store8 offset=4 (local.get $o) (i32.shr_u (local.get $v) (i32.const 8))) (i32.store8 offset=5 (local.get $o) (local.get $v))
            ;; CK-5 from the template sum.
            (local.set $h (i64.add (i64.extend_i32_u (local.get $ipBase))
                                   (i64.extend_i32_u (i32.add (local.get $total) (local.get $v)))))
            (local.set $h (i64.add (i64.and (local.get $h) (i64.const 0xFFFF)) (i64.shr_u (local.get $h) (i64.const 16))))
        (local.set $h (i64.add (i64.and (local.get $h) (i64.const 0xFFFF)) (i64.shr_u (local.get $h) (i64.const 16))))
        (local.set $h (i64.add (i64.and (local.get $h) (i64.const 0xFFFF)) (i64.shr_u (local.get $h) (i64.const 16))))
        (local.set $h (i64.add (i64.and (local.get $h) (i64.const 0xFFFF)) (i64.shr_u (local.get $h) (i64.const 16))))
        (local.set $v (i32.xor (i32.wrap_i64 (local.get $h)) (i32.const 0xFFFF)))
            (i32.store8 offset=10 (local.get $o) (i32.shr_u (local.get $v) (i32.const 8))) (i32.store8 offset=11 (local.get $o) (local.get $v)))
          (else
            (local.set $v (i32.sub (local.get $total) (local.get $cs)))
            (i32.store8 offset=4 (local.get $o) (i32.shr_u (local.get $v) (i32.const 8))) (i32.store8 offset=5 (local.get $o) (local.get $v))))
        (local.set $th (i32.add (local.get $o) (local.get $cs)))
        ;; Pseudo-header length is a 16-bit word (CK-2).
        (local.set $s (i64.add (i64.extend_i32_u (local.get $thBase))
          (i64.extend_i32_u (i32.and (i32.add (local.get $thLen) (local.get $segLen)) (i32.const 0xFFFF)))))
        (if (i32.and (local.get $kind) (i32.const 2))
          (then
            (local.set $v (i32.and (i32.add (local.get $segLen) (local.get $thLen)) (i32.const 0xFFFF)))
            (i32.store8 offset=4 (local.get $th) (i32.shr_u (local.get $v) (i32.const 8))) (i32.store8 offset=5 (local.get $th) (local.get $v))
            (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $v)))))
          (else
            ;; Sequence number mod 2^32 (PIT-11); FIN/PSH only on the last segment.
            (local.set $seq (i32.add (local.get $firstSeq) (i32.mul (local.get $i) (local.get $gs))))
            (i32.store8 offset=4 (local.get $th) (i32.shr_u (local.get $seq) (i32.const 24)))
            (i32.store8 offset=5 (local.get $th) (i32.shr_u (local.get $seq) (i32.const 16)))
            (i32.store8 offset=6 (local.get $th) (i32.shr_u (local.get $seq) (i32.const 8)))
            (i32.store8 offset=7 (local.get $th) (local.get $seq))
            (local.set $f (select (local.get $lastFlags) (local.get $midFlags)
              (i32.eq (i32.add (local.get $segStart) (local.get $segLen)) (local.get $len))))
            (i32.store8 offset=13 (local.get $th) (local.get $f))
            (local.set $s (i64.add (local.get $s)
              (i64.extend_i32_u (i32.add (i32.add (i32.shr_u (local.get $seq) (i32.const 16))
                                                  (i32.and (local.get $seq) (i32.const 0xFFFF)))
                                         (local.get $f)))))))
        (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF)) (i64.shr_u (local.get $s) (i64.const 16))))
        (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF)) (i64.shr_u (local.get $s) (i64.const 16))))
        (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF)) (i64.shr_u (local.get $s) (i64.const 16))))
        (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xFFFF)) (i64.shr_u (local.get $s) (i64.const 16))))
        (local.set $v (i32.xor
          (call $copysum (i32.add (local.get $o) (local.get $hl)) (i32.add (local.get $src) (local.get $segStart))
                         (local.get $segLen) (i32.wrap_i64 (local.get $s)))
          (i32.const 0xFFFF)))
        ;; D-4: a computed UDP checksum of 0 is sent as 0xFFFF.
        (if (i32.and (i32.eqz (local.get $v)) (i32.ne (i32.and (local.get $kind) (i32.const 2)) (i32.const 0)))
          (then (local.set $v (i32.const 0xFFFF))))
        (local.set $k (i32.add (local.get $th) (local.get $co)))
        (i32.store8 offset=0 (local.get $k) (i32.shr_u (local.get $v) (i32.const 8))) (i32.store8 offset=1 (local.get $k) (local.get $v))
        (local.set $o (i32.add (local.get $o) (local.get $total)))
        (local.set $segStart (i32.add (local.get $segStart) (local.get $gs)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $seg)))
    (i32.sub (local.get $o) (local.get $out)))
)
