"""The hand-computed case shared by the metric and report tests: four documents, three labels."""

from __future__ import annotations

# Four documents, three labels.
#   doc  gold    pred
#   0    A, B    A
#   1    A       A, C
#   2    C       C
#   3    B       -
# Per label: A tp=2 fp=0 fn=0 -> P 1,   R 1, F1 1,   support 2
#            B tp=0 fp=0 fn=2 -> P 0*,  R 0, F1 0,   support 2   (* zero_division=0)
#            C tp=1 fp=1 fn=0 -> P 1/2, R 1, F1 2/3, support 1
# Micro: tp=3 fp=1 fn=2 -> P 3/4, R 3/5, F1 2*3/(2*3+1+2) = 2/3
# Macro over A, B, C: P (1+0+1/2)/3 = 1/2, R (1+0+1)/3 = 2/3, F1 (1+0+2/3)/3 = 5/9
# Samples F1: doc0 2*1/(2+1) = 2/3, doc1 2/3, doc2 1, doc3 0 -> 7/12; subset accuracy: doc2 only -> 1/4
GOLD = [["A", "B"], ["A"], ["C"], ["B"]]
PRED = [["A"], ["A", "C"], ["C"], []]
LABELS = ["A", "B", "C"]
