#!/usr/bin/env python3
"""Self-consistent mean-field (Siegert) rate of the Brunel (2000) network, model A:

    nu = 1 / (tau_rp + tau sqrt(pi) int_{(V_r - mu)/sigma}^{(theta - mu)/sigma} e^{u^2} (1 + erf u) du)
    mu = C_E J tau (nu_ext + nu (1 - g gamma)),  sigma^2 = C_E J^2 tau (nu_ext + nu (1 + g^2 gamma))

with gamma = C_I / C_E = 0.25 and nu_ext = eta * theta / (J C_E tau).

    python siegert.py --J 0.1 --g 5 --eta 2
"""
import argparse
import math

from scipy import integrate, optimize, special


def rate(J, g, eta, CE=1000, gamma=0.25, tau=20.0, theta=20.0, vr=10.0, tref=2.0):
    """Stationary rate [Hz]; times in ms inside."""
    nu_thr = theta / (J * CE * tau)  # per ms
    nu_ext = eta * nu_thr

    def siegert(nu):
        mu = CE * J * tau * (nu_ext + nu * (1 - g * gamma))
        sigma = math.sqrt(CE * J * J * tau * (nu_ext + nu * (1 + g * g * gamma)))
        f = lambda u: special.erfcx(-u) if u < 0 else math.exp(u * u) * (1 + special.erf(u))
        integral, _ = integrate.quad(f, (vr - mu) / sigma, (theta - mu) / sigma, limit=200)
        return 1.0 / (tref + tau * math.sqrt(math.pi) * integral)

    nu = optimize.brentq(lambda x: siegert(x) - x, 1e-6, 1.0 / tref - 1e-6)
    return nu * 1000.0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--J", type=float, default=0.1)
    ap.add_argument("--g", type=float, default=5.0)
    ap.add_argument("--eta", type=float, default=2.0)
    a = ap.parse_args()
    print(f"Siegert rate (J = {a.J} mV, g = {a.g}, eta = {a.eta}): {rate(a.J, a.g, a.eta):.3f} Hz")
