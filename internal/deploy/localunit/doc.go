// Package localunit holds the unit kinds of the local backend: qemu VMs
// booted from a deployment's image, and processes on the machine kiln runs
// on. Both implement deploy.UnitKind.
//
// # Supervision
//
// kiln is a command, not a daemon, and a deployment must outlive it. Each
// running unit therefore has a small supervisor process of its own: kiln
// starts its own binary again as "kiln __kiln-supervise DIR" in a new
// session (so that it survives kiln exiting, being interrupted or being
// killed), hands it the launch description on a pipe (so that secrets in
// the unit's environment or inputs never touch the disk), and waits until
// the supervisor reports the unit up. The supervisor:
//
//   - holds a POSIX record lock on DIR/supervisor.lock for its lifetime.
//     The kernel drops it when the supervisor dies, so the lock, not a pid
//     file, says whether a supervisor runs, and F_GETLK names its pid. A
//     second supervisor of the same unit finds the lock taken and exits at
//     once: there is never more than one VM or process per unit, whatever
//     crashes and reruns happen;
//   - starts the unit (qemu, or the command), writes DIR/state.json on
//     every change, and waits. A VM is up once QMP says it runs and the
//     guest agent printed KILN-READY on the serial console (after
//     multi-user.target); a process once its ports accept connections;
//   - reports a unit that dies (state.json: the exit, its time, the
//     restart count) and, under the unit's restart policy "on-failure"
//     (the default), starts it again after a pause growing from 1s to 30s,
//     at most 5 times in 10 minutes before it gives up and marks the unit
//     failed. A clean exit (status 0, a guest that powered itself off) is
//     not restarted. "never" restarts nothing. kiln status shows all of
//     it;
//   - on SIGTERM stops the unit cleanly — the ACPI power button over QMP
//     for a VM, SIGTERM to a process's group — waits up to the unit's
//     stop timeout, then stops it hard, records "stopped" and exits.
//
// A supervisor that is itself killed (or a reboot of the machine) leaves
// the unit not running; Status reports it failed and the next Apply
// starts it again. kiln does not install anything that restarts units
// after a reboot.
//
// # Files
//
// Each unit has a directory, <state>/deployments/<deployment>/<unit>:
//
//	unit.json        what kiln applied: kind, region, tags, token, ports,
//	                 settings (no secrets); written before the supervisor
//	                 starts, so a crash leaves nothing Resources cannot find
//	state.json       the supervisor's view: state, pids, restarts, last exit
//	supervisor.lock  held by the live supervisor
//	supervisor.log   the supervisor's log; output.log a process's output
//	overlay.qcow2    a VM's disk: copy-on-write over the image's raw disk
//	OVMF_VARS.fd     a VM's firmware variables
//	console.log      a VM's serial console; qmp.sock its QMP socket
//	data/            a process unit's data directory (KILN_DATA_DIR)
//
// kiln destroy removes the directory with the unit; what the project
// keeps (a VM's disk, a data directory: destroy.retain) Keep moves to
// <state>/retained/<deployment>/ first, where Retained lists it.
//
// Kiln serialises Apply, SetRunning and Destroy of one unit across
// processes with a flock on <state>/locks/unit-<deployment>-<unit>.lock.
package localunit
