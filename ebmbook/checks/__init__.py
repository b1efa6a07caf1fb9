"""Homework checkers: run a student's function beside the reference and explain the first difference.

The mechanism, :func:`~ebmbook.checks.compare.compare` and its verdict
:class:`~ebmbook.checks.compare.CheckResult`, lives in ``checks/compare.py``; each chapter's
checkers live in ``checks/<chapter>.py`` and are named ``check_<what the student wrote>``.
All of them are re-exported here, so ``eb.checks.check_mh_accept`` is all a student types.
Randomness never enters a comparison by chance: a checker either passes the noise in as an
input, making the step deterministic, or tests a distributional property with a stated tolerance.

See chapter: "Boltzmann distributions and the partition function" (chapters/boltzmann.ipynb).
"""

from .compare import CheckResult, compare
from .boltzmann import check_boltzmann_probs, check_log_partition_1d
from .sampling import check_langevin_step, check_mala_step, check_mh_accept
from .contrastive_divergence import check_cd_loss
from .improved_cd import check_kl_term
from .score_matching import check_dsm_loss, check_nce_loss, check_sliced_score_matching

__all__ = ["CheckResult", "compare", "check_boltzmann_probs", "check_log_partition_1d", "check_mh_accept",
           "check_langevin_step", "check_mala_step", "check_cd_loss", "check_kl_term", "check_dsm_loss",
           "check_sliced_score_matching", "check_nce_loss"]
