# SPDX-License-Identifier: MIT
# fish completion for evctl(1): commands, their options and the names of the
# objects in the namespace evctl would use (`evctl wait <TAB>`).  As the
# bash completion does, it reads commands and options from evctl's own
# --help, and object names from `evctl list --raw --no-legend --output
# name,type` run with EVD_NO_AUTOSTART=1, so that TAB never starts a daemon.

function __evctl_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l prog $tokens[1]
    set -l globals
    set -l cmd
    set -l args
    set -l dashdash 0
    set -l prev ''
    set -q tokens[2]; and set prev $tokens[-1]

    set -l i 2
    while test $i -le (count $tokens)
        set -l w $tokens[$i]
        set i (math $i + 1)
        if test $dashdash = 1
            set -a args $w
            continue
        end
        switch $w
            case --runtime-dir
                set -a globals $w
                if test $i -le (count $tokens)
                    set -a globals $tokens[$i]
                end
                set i (math $i + 1)
                continue
            case '--runtime-dir=*' --system --user
                set -a globals $w
                continue
            case --
                if set -q cmd[1]
                    set dashdash 1
                    continue
                end
            case -t --timeout --progress --value --value-file --count --max --initial --owner --parties --output
                set i (math $i + 1)
                continue
            case '-*'
                continue
        end
        if not set -q cmd[1]
            set cmd $w
        else if test (count $cmd) = 1; and contains -- $cmd[1] sem lock barrier
            set -a cmd $w
        else
            set -a args $w
        end
        # sem run / lock run: the command to run starts after NAME.
        if contains -- "$cmd" 'sem run' 'lock run'; and test (count $args) = 1
            set -l at $i
            if test "$tokens[$at]" = --
                set at (math $at + 1)
            end
            if test $at -le (count $tokens); or not string match -q -- '-*' $cur
                complete -C (string join ' ' -- (string escape -- $tokens[$at..-1]) $cur)
                return
            end
            break
        end
    end

    switch $prev
        case --runtime-dir
            __fish_complete_directories $cur
            return
        case --value-file
            __fish_complete_path $cur
            return
        case --output
            # What comes before the column being typed ("name," or "+").
            set -l head (string match -r '^.*,|^\+' -- $cur; or echo '')
            for c in ($prog list --output help 2>/dev/null | string match -r '^ [ *] (\S+)' | string match -rv '^ ') help
                echo $head$c
                echo $head(string lower -- $c)
            end
            return
        case -t --timeout --progress --value --count --max --initial --owner --parties
            return
    end

    if not set -q cmd[1]
        if string match -q -- '-*' $cur
            printf '%s\n' --runtime-dir --system --user --help --version
        else
            $prog --help 2>/dev/null | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 }
                on { split(substr($0, 3, 13), w, " "); if (!(w[1] in seen)) print w[1]; seen[w[1]] }'
        end
        return
    end
    if test (count $cmd) = 1; and contains -- $cmd[1] sem lock barrier
        $prog --help 2>/dev/null | awk -v word=$cmd[1] '/^Commands:/ { on = 1; next } /^$/ { on = 0 }
            on { split(substr($0, 3, 13), w, " "); if (w[1] == word && w[2] != "") print w[2] }'
        return
    end
    if string match -q -- '-*' $cur; and test $dashdash = 0
        $prog $cmd --help 2>/dev/null | sed -n 's/^ \{1,\}\(-[^ ].*\)$/\1/p' |
            sed 's/   *.*//' | grep -o -- '--[a-z][a-z-]*'
        return
    end

    set -l type ''
    set -l many 0
    switch "$cmd"
        case set clear reset is-set fail
            set type event
        case wait
            set type event
            set many 1
        case show delete
        case watch
            set many 1
        case 'sem create'
            return
        case 'sem *'
            set type sem
        case 'lock *'
            set type lock
        case 'barrier *'
            set type barrier
        case '*'
            return
    end
    if test $many = 0; and set -q args[1]
        return
    end
    EVD_NO_AUTOSTART=1 $prog $globals list --raw --no-legend --output name,type 2>/dev/null </dev/null |
        awk -v type=$type 'type == "" || $2 == type { print $1 }'
end

complete -c evctl -f -a '(__evctl_complete)'
